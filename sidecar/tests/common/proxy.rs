//! A TCP proxy on a fixed loopback port that can be taken down and brought back, to play a node
//! that goes away and returns on the same address.

#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use tokio::{
    net::{TcpSocket, TcpStream},
    task::{JoinHandle, JoinSet},
};

pub struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Proxy {
    /// A proxy to `target` on a free loopback port, up.
    pub async fn start(target: SocketAddr) -> Self {
        let port = ecrop::dev::free_port().expect("free port");
        let mut proxy = Self { addr: SocketAddr::from(([127, 0, 0, 1], port)), target, task: None };
        proxy.up().await;
        proxy
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Listens again on the same port.
    pub async fn up(&mut self) {
        assert!(self.task.is_none(), "proxy already up");
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(self.addr).unwrap();
        let listener = socket.listen(64).unwrap();
        let target = self.target;
        self.task = Some(tokio::spawn(async move {
            // Dropping the set (when this task is aborted) aborts every connection.
            let mut connections = JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                connections.spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                while connections.try_join_next().is_some() {}
            }
        }));
    }

    /// Closes the listener and every open connection.
    pub async fn down(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
