//! `ecrop audit`: checking and exporting the audit log.
//!
//! Both subcommands open the store as a RocksDB secondary instance, so they work while
//! `ecrop serve` holds it, and never write to it. They see the log as of their start.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use time::{
    Date, OffsetDateTime, Time, format_description::well_known::Rfc3339, macros::format_description,
};

use super::Cli;
use crate::{
    audit::{
        AuditError, Entry, Outcome,
        chain::{self, Bound, Item, Range},
    },
    config,
    store::Store,
};

/// Entries between two progress lines of a long export or verification.
const PROGRESS_EVERY: u64 = 100_000;

/// Subcommands of `ecrop audit`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain: name every modified, deleted, reordered or inserted entry and a
    /// head that does not name the last entry; print the head hash to keep elsewhere, and with
    /// --anchor check a hash kept earlier. Exits non-zero on any break.
    Verify(VerifyArgs),
    /// Write entries of a range as JSON lines or CSV for a compliance review.
    Export(ExportArgs),
}

/// Where the store is.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Directory of the sidecar's RocksDB store [config: permissioning.store_path]
    /// [default: .ecrop/store].
    #[arg(long, env = "ECROP_STORE_PATH", value_name = "DIR")]
    pub store_path: Option<PathBuf>,
}

/// Options of `ecrop audit verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,

    /// A head hash kept elsewhere earlier (from an earlier verify, or the sidecar's log at
    /// shutdown): the chain must still hold the entry with this hash. Catches a log rewritten
    /// consistently, or cut back, since then.
    #[arg(long, value_name = "HASH")]
    pub anchor: Option<String>,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object per line: the stored entry plus `time_utc`.
    Jsonl,
    /// A header line, then one row per entry.
    Csv,
}

/// Options of `ecrop audit export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,

    /// First entry exported (inclusive): an RFC 3339 time (`2026-01-31T09:00:00Z`), a date
    /// (`2026-01-31`, midnight UTC) or `seq:N` [default: the first entry].
    #[arg(long, value_name = "WHEN", value_parser = parse_bound)]
    pub from: Option<Bound>,

    /// End of the range (exclusive): same forms as --from; `--to 2026-02-01` ends with the
    /// last entry of January 31 [default: after the last entry].
    #[arg(long, value_name = "WHEN", value_parser = parse_bound)]
    pub to: Option<Bound>,

    /// Output format.
    #[arg(long, value_name = "FORMAT", default_value = "jsonl")]
    pub format: Format,

    /// Write to this file instead of standard output (written completely, then renamed into
    /// place).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Replace --out when it exists.
    #[arg(long, requires = "out")]
    pub force: bool,
}

/// Parses `seq:N`, an RFC 3339 time or a date into a range bound.
pub fn parse_bound(text: &str) -> Result<Bound, String> {
    if let Some(number) = text.strip_prefix("seq:") {
        return number
            .parse::<u64>()
            .map(Bound::Seq)
            .map_err(|_| format!("`{text}`: seq must be a whole number, as in seq:42"));
    }
    let time = match OffsetDateTime::parse(text, &Rfc3339) {
        Ok(time) => time,
        Err(_) => {
            let date = Date::parse(text, format_description!("[year]-[month]-[day]")).map_err(
                |_| {
                    format!(
                        "`{text}`: expected an RFC 3339 time (2026-01-31T09:00:00Z), a date (2026-01-31) or seq:N"
                    )
                },
            )?;
            date.with_time(Time::MIDNIGHT).assume_utc()
        }
    };
    let ms = time.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(ms).map(Bound::TimeMs).map_err(|_| format!("`{text}`: time out of range"))
}

pub use crate::clock::format_ms as format_time;

/// Runs an `audit` subcommand.
pub async fn run(cli: &Cli, command: &AuditCommand) -> anyhow::Result<()> {
    let file = super::load_file(cli)?;
    match command {
        AuditCommand::Verify(args) => {
            let store = open_store(&args.store, &file)?;
            let (json, anchor) = (args.json, args.anchor.clone());
            tokio::task::spawn_blocking(move || verify(&store, json, anchor.as_deref())).await?
        }
        AuditCommand::Export(args) => {
            let store = open_store(&args.store, &file)?;
            let range = Range { from: args.from, to: args.to };
            let (format, out, force) = (args.format, args.out.clone(), args.force);
            tokio::task::spawn_blocking(move || {
                export(&store, range, format, out.as_deref(), force)
            })
            .await?
        }
    }
}

/// Opens the store named by the flag, the environment or the configuration, as a secondary.
fn open_store(args: &StoreArgs, file: &config::FileConfig) -> anyhow::Result<Store> {
    let path = args
        .store_path
        .clone()
        .or_else(|| file.permissioning.store_path.clone())
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_STORE_PATH));
    Store::open_secondary(&path).with_context(|| "opening the store for reading".to_owned())
}

fn verify(store: &Store, json: bool, anchor: Option<&str>) -> anyhow::Result<()> {
    let report = chain::verify_with(store, |seq| {
        if seq % PROGRESS_EVERY == 0 {
            eprintln!("audit verify: {seq} entries read");
        }
    })?;
    let anchor = match anchor {
        Some(hash) => Some(find_anchor(store, hash)?),
        None => None,
    };
    if json {
        let mut value = serde_json::to_value(&report)?;
        if let (Some((hash, found)), Some(object)) = (&anchor, value.as_object_mut()) {
            object.insert("anchor".into(), serde_json::json!({"hash": hash, "seq": found}));
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        for found in &report.breaks {
            println!("BROKEN {found}");
        }
        if report.unlisted_breaks > 0 {
            println!("BROKEN and {} more breaks", report.unlisted_breaks);
        }
        match &report.head {
            Some(head) => println!("head: seq {} hash {}", head.seq, head.hash),
            None => println!("head: none (empty log)"),
        }
        match &anchor {
            Some((_, Some(seq))) => {
                println!(
                    "anchor: seq {seq}; the entries up to it are as they were when it was kept"
                )
            }
            Some((hash, None)) => println!("BROKEN anchor {hash} is not in the audit log"),
            None => {}
        }
        if report.is_intact() && !matches!(anchor, Some((_, None))) {
            println!("audit log intact: {} entries", report.entries);
        }
    }
    let breaks = report.breaks.len() as u64 + report.unlisted_breaks;
    anyhow::ensure!(breaks == 0, "audit log broken: {breaks} breaks in {} entries", report.entries);
    if let Some((hash, None)) = anchor {
        anyhow::bail!(
            "anchor {hash} is not in the audit log: the log was rewritten or cut back since it was kept"
        );
    }
    Ok(())
}

/// The seq of the entry whose hash is `anchor` (normalised: no `0x`, lowercase), if any.
fn find_anchor(store: &Store, anchor: &str) -> anyhow::Result<(String, Option<u64>)> {
    let anchor = anchor.trim().trim_start_matches("0x").to_ascii_lowercase();
    let mut found = None;
    chain::read_range(
        store,
        Range::default(),
        |item| {
            if let Item::Entry(entry) = item
                && entry.hash == anchor
            {
                found = Some(entry.seq);
            }
            Ok(())
        },
        |_| {},
    )?;
    Ok((anchor, found))
}

/// Columns of the CSV export.
const CSV_HEADER: [&str; 16] = [
    "seq",
    "time_utc",
    "who",
    "kind",
    "action",
    "request_id",
    "uid",
    "account",
    "target",
    "outcome",
    "result",
    "error_code",
    "error_message",
    "detail",
    "prev_hash",
    "hash",
];

fn export(
    store: &Store,
    range: Range,
    format: Format,
    out: Option<&Path>,
    force: bool,
) -> anyhow::Result<()> {
    match (range.from, range.to) {
        (Some(Bound::Seq(from)), Some(Bound::Seq(to))) if from > to => {
            anyhow::bail!("--from seq:{from} comes after --to seq:{to}")
        }
        (Some(Bound::TimeMs(from)), Some(Bound::TimeMs(to))) if from > to => {
            anyhow::bail!("--from {} comes after --to {}", format_time(from), format_time(to))
        }
        _ => {}
    }
    if let Some(path) = out.filter(|p| p.exists() && !force) {
        anyhow::bail!("output file exists ({}); pass --force to replace it", path.display());
    }
    let partial = out.map(|path| {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".partial");
        path.with_file_name(name)
    });
    let sink: Box<dyn Write> = match &partial {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("creating the output file ({})", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };

    let written = write_entries(store, range, format, sink);
    if let (Err(_), Some(partial)) = (&written, &partial) {
        let _ = std::fs::remove_file(partial);
    }
    let (count, skipped) = written?;
    if let (Some(partial), Some(out)) = (&partial, out) {
        std::fs::rename(partial, out)
            .with_context(|| format!("moving the export into place ({})", out.display()))?;
    }
    let to = out.map_or_else(|| "standard output".to_owned(), |p| p.display().to_string());
    eprintln!("audit export: {count} entries written to {to}");
    anyhow::ensure!(
        skipped == 0,
        "{skipped} stored entries do not decode and were skipped; run `ecrop audit verify`"
    );
    Ok(())
}

/// One line of the JSON lines export: the stored entry, its fields in stored order, and the
/// time in RFC 3339.
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    #[serde(flatten)]
    entry: &'a Entry,
    time_utc: String,
}

/// The export's writer.
enum Sink {
    Jsonl(std::io::BufWriter<Box<dyn Write>>),
    Csv(Box<csv::Writer<Box<dyn Write>>>),
}

impl Sink {
    fn write(&mut self, entry: &Entry) -> Result<(), AuditError> {
        let failed = |e: &dyn std::fmt::Display| AuditError::Export(e.to_string());
        match self {
            Self::Jsonl(out) => {
                let line = JsonLine { entry, time_utc: format_time(entry.time_ms) };
                serde_json::to_writer(&mut *out, &line).map_err(|e| failed(&e))?;
                out.write_all(b"\n").map_err(|e| failed(&e))
            }
            Self::Csv(out) => out.write_record(csv_row(entry)).map_err(|e| failed(&e)),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Jsonl(out) => out.flush(),
            Self::Csv(out) => out.flush(),
        }
    }
}

/// Writes the entries of `range`; returns how many were written and how many skipped.
fn write_entries(
    store: &Store,
    range: Range,
    format: Format,
    out: Box<dyn Write>,
) -> anyhow::Result<(u64, u64)> {
    let mut sink = match format {
        Format::Jsonl => Sink::Jsonl(std::io::BufWriter::new(out)),
        Format::Csv => {
            // The csv writer buffers itself and quotes commas, quotes and line breaks.
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record(CSV_HEADER)?;
            Sink::Csv(Box::new(writer))
        }
    };
    let (mut count, mut skipped, mut scanned) = (0u64, 0u64, 0u64);
    chain::read_range(
        store,
        range,
        |item| match item {
            Item::Entry(entry) => {
                sink.write(&entry)?;
                count += 1;
                Ok(())
            }
            Item::Undecodable { key, reason } => {
                eprintln!("audit export: skipped {key}: does not decode ({reason})");
                skipped += 1;
                Ok(())
            }
        },
        |_| {
            scanned += 1;
            if scanned % PROGRESS_EVERY == 0 {
                eprintln!("audit export: {scanned} entries scanned");
            }
        },
    )?;
    sink.flush().context("writing the export")?;
    Ok((count, skipped))
}

fn csv_row(entry: &Entry) -> [String; 16] {
    let (outcome, result, code, message) = match &entry.outcome {
        Outcome::Ok { result } => {
            ("ok", result.clone().unwrap_or_default(), String::new(), String::new())
        }
        Outcome::Error { code, message } => {
            ("error", String::new(), code.to_string(), message.clone())
        }
        Outcome::None => ("none", String::new(), String::new(), String::new()),
    };
    [
        entry.seq.to_string(),
        format_time(entry.time_ms),
        inert(entry.who.clone()),
        entry.kind.as_str().to_owned(),
        inert(entry.action.clone()),
        inert(entry.request_id.clone().unwrap_or_default()),
        entry.uid.clone(),
        inert(entry.account.clone().unwrap_or_default()),
        inert(entry.target.clone().unwrap_or_default()),
        outcome.to_owned(),
        inert(result),
        code,
        inert(message),
        inert(entry.detail.clone().unwrap_or_default()),
        entry.prev_hash.clone(),
        entry.hash.clone(),
    ]
}

/// A cell a spreadsheet will not read as a formula: text a client chose (a method name, a
/// message) that starts with `=`, `+`, `-`, `@` or a control character gets a leading `'`.
fn inert(text: String) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_never_formulas() {
        assert_eq!(inert("=cmd|'/C calc'!A0".into()), "'=cmd|'/C calc'!A0");
        assert_eq!(inert("@SUM(A1)".into()), "'@SUM(A1)");
        assert_eq!(inert("-32003".into()), "'-32003");
        assert_eq!(inert("eth_call".into()), "eth_call");
        assert_eq!(inert(String::new()), "");
    }

    #[test]
    fn parses_bounds() {
        assert_eq!(parse_bound("seq:42"), Ok(Bound::Seq(42)));
        assert_eq!(parse_bound("1970-01-02"), Ok(Bound::TimeMs(86_400_000)));
        assert_eq!(parse_bound("1970-01-01T00:00:01.5Z"), Ok(Bound::TimeMs(1500)));
        assert_eq!(parse_bound("1970-01-01T01:00:00+01:00"), Ok(Bound::TimeMs(0)));
        assert_eq!(
            parse_bound("seq:x").unwrap_err(),
            "`seq:x`: seq must be a whole number, as in seq:42"
        );
        assert_eq!(
            parse_bound("yesterday").unwrap_err(),
            "`yesterday`: expected an RFC 3339 time (2026-01-31T09:00:00Z), a date (2026-01-31) or seq:N"
        );
    }

    #[test]
    fn formats_times_with_milliseconds() {
        assert_eq!(format_time(1500), "1970-01-01T00:00:01.500Z");
        assert_eq!(
            parse_bound(&format_time(1_767_225_600_123)),
            Ok(Bound::TimeMs(1_767_225_600_123))
        );
    }
}
