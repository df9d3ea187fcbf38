//! The shell's one ordering rule, checked from outside (specs/protocol.md §7): a step's
//! state-file write has completed before any datagram of that step reaches a peer.
//!
//! The node runs its real shell on a real loopback socket; its storage is a recorder whose
//! every write takes a while before it reports completion, and its peers are plain sockets
//! that note, on each datagram's arrival, the newest currentEpoch durably written so far. Every
//! PING and PONG header a peer receives must then carry a currentEpoch already on disk —
//! which fails at once if the shell handed a step's datagrams to the socket before its write
//! finished.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use slotguard::driver::Save;
use slotguard::identity::NodeName;
use slotguard::wire::{self, BusKey};
use slotguard_protocol::{Epoch, Header, InitialEpochs, Layout, Msg, NodeId, NodeState, SlotSet};
use tokio::net::UdpSocket;

use super::config::{ClientLimits, Endpoint, NodeConfig};
use super::storage::{StorageError, Store};
use super::Runtime;

const KEY: &[u8] = b"ordering-test-key-0123456789";
/// How long each write takes before it reports completion: far longer than a datagram takes
/// on loopback.
const WRITE_TIME: Duration = Duration::from_millis(300);

/// What the peers saw, against what the storage had completed.
#[derive(Default)]
struct Journal {
    /// currentEpoch of every completed write, in order.
    saved: Vec<Epoch>,
    /// Per PING or PONG received: its header's currentEpoch, and the newest currentEpoch
    /// durably written when it arrived.
    received: Vec<(Epoch, Option<Epoch>)>,
}

/// A storage that takes [`WRITE_TIME`] per write and records its completion.
struct SlowStore(Arc<Mutex<Journal>>);

impl Store for SlowStore {
    fn write(&self, save: &Save) -> Result<(), StorageError> {
        std::thread::sleep(WRITE_TIME);
        let mut journal = self.0.lock().expect("journal");
        journal.saved.push(save.state.current_epoch);
        Ok(())
    }
}

/// Notes, for every header in every datagram `peer` receives, what was on disk by then.
async fn listen(
    socket: Arc<UdpSocket>,
    peer: u16,
    layout: Arc<Layout>,
    journal: Arc<Mutex<Journal>>,
) {
    let key = BusKey::new(KEY, &layout);
    let mut buf = vec![0u8; wire::MAX_DATAGRAM + 1];
    while let Ok((n, _)) = socket.recv_from(&mut buf).await {
        let mut journal = journal.lock().expect("journal");
        let on_disk = journal.saved.iter().max().copied();
        let Ok(datagram) = wire::open(&key, peer, &buf[..n]) else {
            continue;
        };
        for msg in datagram.messages {
            if let Msg::Ping(h) | Msg::Pong(h) = msg {
                journal.received.push((h.current_epoch, on_disk));
            }
        }
    }
}

fn config(layout: &Arc<Layout>, buses: &[SocketAddr], dir: PathBuf) -> NodeConfig {
    let nodes: Vec<Endpoint> = buses
        .iter()
        .enumerate()
        .map(|(i, bus)| format!("127.0.0.1:{}@{}", 7000 + i, bus.port()).parse())
        .collect::<anyhow::Result<_>>()
        .expect("endpoints");
    NodeConfig {
        id: 0,
        layout: Arc::clone(layout),
        timing: slotguard_protocol::Timing::from_node_timeout(Duration::from_secs(10)),
        nodes,
        data_dir: dir,
        key: KEY.to_vec(),
        clients: ClientLimits::default(),
        metrics_port: None,
        bind_ip: None,
        trace: None,
        durability: Default::default(),
    }
}

/// A PING from node 1 whose currentEpoch is `epoch`: node 0 adopts it, which is a durable
/// change, and answers with a PONG carrying it.
fn ping_from_1(layout: &Layout, epoch: Epoch) -> Vec<u8> {
    let state = NodeState::fresh(layout, NodeId(1));
    let slots: SlotSet = state
        .slots
        .iter()
        .filter(|(_, owner)| *owner == Some(NodeId(1)))
        .map(|(slot, _)| slot)
        .collect();
    let header = Header {
        current_epoch: epoch,
        config_epoch: state.epoch_of(NodeId(1)),
        master: None,
        slots,
        repl_offset: 0,
        flags: Default::default(),
    };
    let address = wire::Address {
        sender: 1,
        name: [0x11; 20],
        destination: 0,
        incarnation: 0,
        sequence: 1,
    };
    wire::seal(&BusKey::new(KEY, layout), address, &[Msg::Ping(header)]).expect("seals")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_datagram_of_a_step_leaves_before_its_write_completes() {
    let layout = Arc::new(Layout::grid(3, 0, 6, InitialEpochs::Distinct).expect("layout"));
    let journal = Arc::new(Mutex::new(Journal::default()));
    let free = std::net::UdpSocket::bind("127.0.0.1:0").expect("a free port");
    let mut buses = vec![free.local_addr().expect("addr")];
    drop(free);
    let mut peers = Vec::new();
    for id in 1..3u16 {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("peer socket"));
        buses.push(socket.local_addr().expect("addr"));
        let task = listen(
            Arc::clone(&socket),
            id,
            Arc::clone(&layout),
            Arc::clone(&journal),
        );
        tokio::spawn(task);
        peers.push(socket);
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = Arc::new(config(&layout, &buses, dir.path().to_path_buf()));
    let recovered = (NodeName([1; 20]), Vec::new(), 0, None);
    let store = Arc::new(SlowStore(Arc::clone(&journal)));
    let (node, _) = Runtime::start_with(config, recovered, store)
        .await
        .expect("starts");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(node.run(async {
        let _ = stopped.await;
    }));

    let raised = Epoch(50);
    peers[0]
        .send_to(&ping_from_1(&layout, raised), buses[0])
        .await
        .expect("send");
    let answered = tokio::time::timeout(Duration::from_secs(10), async {
        while !journal
            .lock()
            .expect("journal")
            .received
            .iter()
            .any(|r| r.0 >= raised)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let _ = stop.send(());
    running.await.expect("the node task").expect("the node ran");
    assert!(answered.is_ok(), "node 0 answered the PING");

    let journal = journal.lock().expect("journal");
    assert!(
        journal.received.len() >= 3,
        "the start step's announcements and the PONG arrived"
    );
    for &(header, on_disk) in &journal.received {
        assert!(
            on_disk.is_some_and(|saved| saved >= header),
            "a datagram with currentEpoch {header:?} arrived when only {on_disk:?} was on disk \
             (writes completed: {:?})",
            journal.saved
        );
    }
}
