// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title Lifespans
/// @notice The activation history of one registry entry (a node, an account or a validator): the half-open block
/// ranges `[activation, deactivation)` in which the entry is in force.
/// @dev Spans are appended in block order and never overlap: a new span starts no earlier than the previous one ends,
/// and a span's end is never before its start. A span whose removal has not been decided yet ends at {OPEN}. An entry
/// is therefore in force at block `n` exactly when the last span starting at or before `n` has not ended by `n`,
/// which is what {find} checks. Histories stay short (one span per add/remove cycle), so a linear scan from the end
/// is cheaper than a binary search for every realistic entry.
library Lifespans {
    /// @notice Deactivation block of a span whose removal has not been decided: it never ends.
    uint64 internal constant OPEN = type(uint64).max;

    /// @notice One period in force: from block `activation` (inclusive) to block `deactivation` (exclusive).
    struct Span {
        uint64 activation;
        uint64 deactivation;
    }

    /// @notice Whether the entry has a span whose end is not decided, i.e. it is listed and no removal is scheduled.
    function isOpen(Span[] storage spans) internal view returns (bool) {
        uint256 length = spans.length;
        return length != 0 && spans[length - 1].deactivation == OPEN;
    }

    /// @notice Appends a span starting at `earliest`, or at the end of the previous span if that is later.
    /// @dev The caller checks {isOpen} is false first.
    /// @return activation The block from which the new span is in force.
    function open(Span[] storage spans, uint64 earliest) internal returns (uint64 activation) {
        activation = earliest;
        uint256 length = spans.length;
        if (length != 0) {
            uint64 previousEnd = spans[length - 1].deactivation;
            if (previousEnd > activation) activation = previousEnd;
        }
        spans.push(Span({activation: activation, deactivation: OPEN}));
    }

    /// @notice Ends the open span at `earliest`, or at its start if that is later (an empty span, never in force).
    /// @dev The caller checks {isOpen} is true first.
    /// @return deactivation The first block at which the entry is no longer in force.
    function close(Span[] storage spans, uint64 earliest) internal returns (uint64 deactivation) {
        Span storage last = spans[spans.length - 1];
        deactivation = earliest < last.activation ? last.activation : earliest;
        last.deactivation = deactivation;
    }

    /// @notice Whether the entry is in force at `blockNumber`, and if so the index of the span that covers it.
    function find(Span[] storage spans, uint256 blockNumber) internal view returns (bool active, uint256 index) {
        for (uint256 i = spans.length; i != 0; --i) {
            Span storage span = spans[i - 1];
            if (span.activation <= blockNumber) {
                return (blockNumber < span.deactivation, i - 1);
            }
        }
        return (false, 0);
    }

    /// @notice Whether the entry is in force at `blockNumber`.
    function activeAt(Span[] storage spans, uint256 blockNumber) internal view returns (bool active) {
        (active,) = find(spans, blockNumber);
    }
}
