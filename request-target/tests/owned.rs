//! Safe sends with owned buffers: the buffers come back with the completion
//! (with what the device wrote) or with the refusal, for every kind of
//! buffer and every send method; without a callback they are dropped at
//! completion.

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use dmf_buffer_pool::{BufferPool, BufferPoolConfig};
use dmf_request_target::{
    OwnedCompletion, OwnedSendCompleted, RequestTargetConfig, SendBuffer, SendParams,
};
use dmf_sim::{EchoDevice, Sim, SimConfig};
use dmf_wdf::{RequestType, Status};

/// A callback sending every completion to a channel.
fn channel() -> (
    OwnedCompletion<Sim>,
    mpsc::Receiver<OwnedSendCompleted<Sim>>,
) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let callback: OwnedCompletion<Sim> = Arc::new(move |c: OwnedSendCompleted<Sim>| {
        tx.lock().unwrap().send(c).unwrap();
    });
    (callback, rx)
}

fn echo() -> Fixture {
    Fixture::new(
        SimConfig::default(),
        Arc::new(EchoDevice::new()),
        RequestTargetConfig::default(),
    )
}

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn a_vector_comes_back_with_the_bytes_the_device_wrote() {
    let f = echo();
    let (callback, rx) = channel();
    let input = b"hello".to_vec();
    let output = vec![0u8; 16];
    f.module
        .send(
            Some(input.into()),
            Some(output.into()),
            SendParams::ioctl(0x22_2003),
            Some(callback),
            7,
        )
        .unwrap();
    let c = rx.recv_timeout(WAIT).unwrap();
    assert_eq!(c.status, Status::SUCCESS);
    assert_eq!(c.client_context, 7);
    assert_eq!(c.request_type, RequestType::Ioctl);
    assert_eq!(c.information, 5);
    assert_eq!(c.input_bytes(), b"hello");
    assert_eq!(c.output_bytes(), b"hello");
    assert_eq!(c.cancel_id, None);
    let output = c.output.unwrap().into_vec().unwrap();
    assert_eq!(output.len(), 16, "the whole vector comes back");
    assert_eq!(&output[..5], b"hello");
    assert_eq!(c.input.unwrap().into_vec().unwrap(), b"hello");
    f.finish();
}

#[test]
fn boxed_slices_and_pool_buffers_come_back_too() {
    let f = echo();
    let pool = BufferPool::new(&f.sim, BufferPoolConfig::new(2, 32)).unwrap();
    let (callback, rx) = channel();

    // Write a boxed slice, read it back into a pool buffer.
    let input: Box<[u8]> = Box::new(*b"boxed bytes");
    f.module
        .send(
            Some(input.into()),
            None,
            SendParams::write(),
            Some(Arc::clone(&callback)),
            1,
        )
        .unwrap();
    let c = rx.recv_timeout(WAIT).unwrap();
    assert_eq!((c.status, c.information), (Status::SUCCESS, 11));
    assert_eq!(c.input_bytes(), b"boxed bytes");
    assert_eq!(&*c.input.unwrap().into_boxed().unwrap(), b"boxed bytes");

    let buffer = pool.get().unwrap();
    assert_eq!(pool.count(), 1);
    f.module
        .send(
            None,
            Some(SendBuffer::pool_prefix(buffer, 20)),
            SendParams::read(),
            Some(callback),
            2,
        )
        .unwrap();
    let c = rx.recv_timeout(WAIT).unwrap();
    assert_eq!((c.status, c.information), (Status::SUCCESS, 11));
    assert_eq!(c.output_bytes(), b"boxed bytes");
    let output = c.output.unwrap();
    assert_eq!(output.len(), 20);
    let buffer = output.into_pool_buffer().unwrap();
    assert!(buffer.is_from(&pool));
    assert_eq!(&buffer.data()[..11], b"boxed bytes");
    assert_eq!(pool.count(), 1, "the buffer is still ours");
    drop(buffer);
    assert_eq!(pool.count(), 2);
    drop(pool);
    f.finish();
}

#[test]
fn send_ex_and_reuse_send_hand_the_buffers_back_after_a_cancel() {
    let f = Fixture::new(
        SimConfig::default(),
        Arc::new(EchoDevice::new().with_delay_ms(10_000, true)),
        RequestTargetConfig::default(),
    );
    let (callback, rx) = channel();
    let reuse = f.module.reuse_create().unwrap();
    for round in 0..2 {
        let output = vec![round as u8; 8];
        let params = SendParams::read();
        let cb = Some(Arc::clone(&callback));
        let id = if round == 0 {
            f.module
                .send_ex(None, Some(output.into()), params, cb, round)
        } else {
            f.module
                .reuse_send(reuse, None, Some(output.into()), params, cb, round)
        }
        .unwrap();
        assert!(f.module.cancel(id));
        let c = rx.recv_timeout(WAIT).unwrap();
        assert_eq!(c.status, Status::CANCELLED);
        assert_eq!(c.cancel_id, Some(id));
        assert_eq!(c.reuse_id, (round == 1).then_some(reuse));
        assert_eq!(c.client_context, round);
        assert_eq!(c.output.unwrap().into_vec().unwrap(), vec![round as u8; 8]);
    }
    f.module.reuse_delete(reuse).unwrap();
    f.finish();
}

#[test]
fn a_refused_send_hands_the_buffers_back() {
    let f = echo();
    let (callback, rx) = channel();
    let input = vec![1u8, 2, 3];
    let e = f
        .module
        .send(
            Some(input.into()),
            Some(vec![9u8; 4].into()),
            SendParams::new(RequestType::Invalid, 0),
            Some(Arc::clone(&callback)),
            0,
        )
        .unwrap_err();
    assert_eq!(e.status, Status::INVALID_PARAMETER);
    assert_eq!(e.input.unwrap().into_vec().unwrap(), vec![1, 2, 3]);
    assert_eq!(e.output.unwrap().into_vec().unwrap(), vec![9; 4]);

    f.module.io_target_clear();
    let e = f
        .module
        .send_ex(
            Some(vec![4u8].into()),
            None,
            SendParams::write(),
            Some(Arc::clone(&callback)),
            0,
        )
        .unwrap_err();
    assert_eq!(e.status, Status::INVALID_DEVICE_STATE);
    assert_eq!(e.input.unwrap().into_vec().unwrap(), vec![4]);
    // `?` turns the refusal into its status.
    let status = (|| -> Result<(), Status> {
        f.module
            .send(Some(vec![5u8].into()), None, SendParams::write(), None, 0)?;
        Ok(())
    })();
    assert_eq!(status, Err(Status::INVALID_DEVICE_STATE));
    assert!(rx.try_recv().is_err(), "no completion for a refused send");
    f.module.io_target_set(Arc::clone(&f.target)).unwrap();
    f.finish();
}

#[test]
fn without_a_callback_the_buffers_are_dropped_at_completion() {
    let f = echo();
    let pool = BufferPool::new(&f.sim, BufferPoolConfig::new(1, 8)).unwrap();
    let buffer = pool.get().unwrap();
    f.module
        .send(Some(buffer.into()), None, SendParams::write(), None, 0)
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while pool.count() != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the buffer never came home"
        );
        std::thread::yield_now();
    }
    drop(pool);
    f.finish();
}

#[test]
fn a_pool_buffer_length_beyond_its_size_is_clamped() {
    let f = echo();
    let pool = BufferPool::new(&f.sim, BufferPoolConfig::new(1, 8)).unwrap();
    let (callback, rx) = channel();
    let output = SendBuffer::Pool {
        buffer: pool.get().unwrap(),
        len: 1 << 20,
    };
    assert_eq!(output.len(), 8);
    f.module
        .send(
            Some(vec![7u8; 64].into()),
            Some(output),
            SendParams::ioctl(0x22_2003),
            Some(callback),
            0,
        )
        .unwrap();
    let c = rx.recv_timeout(WAIT).unwrap();
    assert_eq!(c.status, Status::SUCCESS);
    assert!(c.information <= 8, "the device saw 8 bytes at most");
    assert_eq!(c.output_bytes(), &[7u8; 8][..c.information]);
    drop(c);
    assert_eq!(pool.count(), 1);
    drop(pool);
    f.finish();
}
