//! The control arm catches a broker that publishes no wills: the reference broker over TCP,
//! behind a proxy that swallows every PUBLISH it sends its clients, passes a negative scenario
//! that opts out of the control (as every negative scenario did before control arms) and fails
//! the same scenario through its control, in 3.1.1 and 5.

use std::process::Stdio;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::reference_broker::ReferenceBroker;
use lastwill::runner::tcp::Endpoint;
use lastwill::runner::{Run, Target};
use lastwill::scenario;
use lastwill::verdict::Verdict;

/// A DISCONNECT discards the will, so the watcher must receive nothing.
fn negative(protocol: &str, control: bool) -> scenario::Scenario {
    let yaml = format!(
        "name: DISCONNECT discards the will\nprotocol: {protocol}\ncontrol: {control}\n\
         clients: {{watcher: {{}}, device: {{}}}}\n\
         steps:\n  - watcher: connect\n  - watcher: {{subscribe: will/#, qos: 1}}\n  \
         - device: {{connect: {{will: {{topic: will/device, payload: gone, qos: 1}}}}}}\n  \
         - device: disconnect\n  - wait: 1s\n\
         expect:\n  watcher: {{receives: nothing}}\n"
    );
    scenario::parse(&yaml, "negative.yaml").expect("parses")
}

/// Forwards connections on 127.0.0.1 to the broker at `port`, dropping every PUBLISH packet
/// the broker sends: a broker that delivers no message, wills included. Returns its port.
fn swallowing_proxy(runtime: &tokio::runtime::Runtime, port: u16) -> u16 {
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind the proxy");
    let proxy_port = listener.local_addr().expect("proxy address").port();
    runtime.spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(broker) = TcpStream::connect(("127.0.0.1", port)).await else {
                continue;
            };
            let (mut from_client, mut to_client) = client.into_split();
            let (mut from_broker, mut to_broker) = broker.into_split();
            tokio::spawn(async move { tokio::io::copy(&mut from_client, &mut to_broker).await });
            tokio::spawn(async move {
                while let Ok(Some(packet)) = read_packet(&mut from_broker).await {
                    // packet type 3: PUBLISH
                    if packet[0] >> 4 != 3 && to_client.write_all(&packet).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    proxy_port
}

/// One whole MQTT packet (fixed header, Remaining Length, body) as read; `None` at the end.
async fn read_packet(from: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Option<Vec<u8>>> {
    let mut packet = vec![0u8];
    if from.read(&mut packet).await? == 0 {
        return Ok(None);
    }
    let mut length = 0usize;
    for shift in (0..28).step_by(7) {
        let byte = from.read_u8().await?;
        packet.push(byte);
        length |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
    }
    let start = packet.len();
    packet.resize(start + length, 0);
    from.read_exact(&mut packet[start..]).await?;
    Ok(Some(packet))
}

fn run(scenario: &scenario::Scenario, port: u16, runtime: &tokio::runtime::Runtime) -> Run {
    let endpoint = Endpoint::at("127.0.0.1", port);
    let capabilities = runtime
        .block_on(endpoint.probe())
        .expect("probe the broker");
    let target = Target::tcp(vec![endpoint], capabilities, "ctl".into());
    // the TCP runner blocks on a runtime of its own
    std::thread::scope(|s| s.spawn(|| target.run(scenario, 0, 0)).join())
        .expect("the run does not panic")
        .expect("the scenario runs")
}

#[test]
fn a_broker_that_publishes_no_wills_fails_negative_scenarios_through_their_control() {
    let broker = ReferenceBroker::start(&["--listen", "127.0.0.1:0"], "warn", Stdio::null());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let proxy = swallowing_proxy(&runtime, broker.port);
    for protocol in ["3.1.1", "5"] {
        let honest = run(&negative(protocol, true), broker.port, &runtime);
        assert_eq!(honest.verdict, Verdict::Pass, "{}", honest.render());
        let control = honest
            .checks
            .iter()
            .find(|c| c.expected.starts_with("control: watcher received"))
            .unwrap_or_else(|| panic!("a passed control check:\n{}", honest.render()));
        assert!(control.passed);

        let before = run(&negative(protocol, false), proxy, &runtime);
        assert_eq!(before.verdict, Verdict::Pass, "{}", before.render());

        let mute = run(&negative(protocol, true), proxy, &runtime);
        assert_eq!(mute.verdict, Verdict::Fail, "{}", mute.render());
        let failed: Vec<_> = mute.checks.iter().filter(|c| !c.passed).collect();
        assert_eq!(failed.len(), 1, "{}", mute.render());
        assert!(
            failed[0]
                .observed
                .starts_with("control failed: watcher never received the will"),
            "{}",
            mute.render()
        );
    }
}
