//! Broker faults injected with rdkafka's MockCluster (an in-process Kafka-protocol
//! mock the `crmpulse` child process connects to over loopback): the broker goes
//! down, requests fail; the pipeline waits, stays up, and ends with exact metrics.

use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use super::*;

#[test]
fn broker_outages_and_request_errors_pause_the_pipeline_and_it_recovers() {
    let mock = MockCluster::new(1).unwrap();
    let s = setup(&mock.bootstrap_servers(), 2);
    let broker = Broker::Mock(mock);
    s.create_topics(&broker);
    let Broker::Mock(mock) = &broker else {
        unreachable!()
    };
    let events = simulated(3, 5);
    let (first, second) = events.split_at(events.len() / 2);
    s.produce(first);

    // The broker is down while the pipeline starts: it waits for it.
    mock.broker_down(1).unwrap();
    let port = free_port();
    let mut run = Guard(s.spawn("run", &["run", "--listen", &format!("127.0.0.1:{port}")]));
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        run.0.try_wait().unwrap().is_none(),
        "the pipeline gave up while the broker was down:\n{}",
        s.log("run")
    );
    mock.broker_up(1).unwrap();
    s.wait_for_events(first.len() as u64, Duration::from_secs(120));

    // Requests fail for a while: produce and fetch errors, then a second outage.
    s.produce(second);
    use RDKafkaRespErr::*;
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        ],
    );
    mock.request_errors(
        RDKafkaApiKey::Fetch,
        &[
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        ],
    );
    mock.broker_down(1).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    mock.broker_up(1).unwrap();
    let view = s.wait_for_events(events.len() as u64, Duration::from_secs(120));
    assert!(
        run.0.try_wait().unwrap().is_none(),
        "the pipeline exited:\n{}",
        s.log("run")
    );
    let expected = reference(&events);
    assert_eq!(differences(&view.sum, &expected), vec![]);
    assert_eq!(view.applied(), expected);
}
