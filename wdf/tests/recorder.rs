//! The in-flight recorder: ring order and wrap-around, cut texts, subjects,
//! and recording from many threads at once.

use std::sync::Arc;

use dmf_sim::{Sim, SimConfig};
use dmf_wdf::recorder::{format_text, Recorder, MODULE, RECORD_TEXT};
use tracing::Level;

fn lines<P: dmf_wdf::Platform, const N: usize>(r: &Recorder<P, N>) -> Vec<String> {
    let mut text = String::new();
    r.write_to(&mut text).unwrap();
    text.lines().map(str::to_owned).collect()
}

#[test]
fn keeps_the_last_n_in_order_across_many_wraps() {
    let sim = Sim::new(SimConfig::default());
    let r = Recorder::<Sim, 5>::new(&sim, format_args!("t"));
    assert!(lines(&r).is_empty());
    for i in 1..=3u64 {
        r.record(Level::INFO, MODULE, format_args!("e{i}"));
    }
    assert_eq!(lines(&r).len(), 3, "not full yet: everything kept");
    for i in 4..=23u64 {
        r.record(Level::INFO, MODULE, format_args!("e{i}"));
        let mut seqs = Vec::new();
        r.for_each(|rec| seqs.push(rec.seq));
        let first = i.saturating_sub(4).max(1);
        assert_eq!(seqs, (first..=i).collect::<Vec<_>>(), "after {i} events");
    }
    assert_eq!(r.total(), 23);
    let l = lines(&r);
    assert!(
        l[0].starts_with("#19 +") && l[0].ends_with(" INFO - e19"),
        "{l:?}"
    );
    assert!(l[4].ends_with("e23"), "{l:?}");
}

#[test]
fn long_texts_are_cut_at_a_character_boundary_and_marked() {
    let long = "é".repeat(RECORD_TEXT); // two bytes each
    let text = format_text(format_args!("x{long}"));
    assert!(text.len() <= RECORD_TEXT);
    assert!(text.ends_with('~'), "{text}");
    assert!(text.starts_with("xéé"));
    // Exactly fitting texts are not marked.
    let fits = "a".repeat(RECORD_TEXT);
    assert_eq!(&*format_text(format_args!("{fits}")), fits.as_str());
    // Many small pieces that overflow are cut once.
    struct Pieces(usize);
    impl std::fmt::Display for Pieces {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            (0..self.0).try_for_each(|_| f.write_str("0123456789"))
        }
    }
    let pieces = format_text(format_args!("{}", Pieces(RECORD_TEXT / 10 + 2)));
    assert_eq!(pieces.len(), RECORD_TEXT);
    assert_eq!(pieces.matches('~').count(), 1);
}

#[test]
fn subjects_filter_the_text() {
    let sim = Sim::new(SimConfig::default());
    let r = Recorder::<Sim>::new(&sim, format_args!("t"));
    r.record(Level::DEBUG, 3, format_args!("three opened"));
    r.record(Level::DEBUG, MODULE, format_args!("module"));
    r.record(Level::WARN, 4, format_args!("four vetoed"));
    r.record(Level::DEBUG, 3, format_args!("three closed"));
    let mut three = String::new();
    r.write_subject(&mut three, 3).unwrap();
    let three: Vec<_> = three.lines().collect();
    assert_eq!(three.len(), 2);
    assert!(three[0].ends_with("DEBUG Target#3.0 three opened"));
    assert!(three[1].ends_with("DEBUG Target#3.0 three closed"));
    assert!(lines(&r)[1].ends_with("DEBUG - module"));
}

#[test]
fn concurrent_writers_lose_nothing_and_tear_nothing() {
    let sim = Sim::new(SimConfig::default());
    let r: Arc<Recorder<Sim, 32>> = Recorder::new(&sim, format_args!("t"));
    let threads: Vec<_> = (1..=4u64)
        .map(|t| {
            let r = Arc::clone(&r);
            std::thread::spawn(move || {
                for i in 0..500u64 {
                    r.record(Level::TRACE, t, format_args!("thread {t} event {i}"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(r.total(), 2000);
    let mut seqs = Vec::new();
    r.for_each(|rec| {
        assert_eq!(
            &*rec.text,
            format!(
                "thread {} event {}",
                rec.subject,
                rec.text.rsplit(' ').next().unwrap()
            )
        );
        seqs.push(rec.seq);
    });
    assert_eq!(seqs, (1969..=2000).collect::<Vec<_>>());
}

#[test]
fn write_newest_keeps_the_newest_whole_lines_that_fit() {
    let sim = Sim::new(SimConfig::default());
    let r = Recorder::<Sim, 16>::new(&sim, format_args!("t"));
    for i in 0..10u64 {
        r.record(Level::INFO, (1 << 32) | (i % 2), format_args!("event {i}"));
    }
    let all = lines(&r);
    let line_len = all[9].len() + 1;
    // Room for three and a half lines: the newest three, whole.
    let mut out = vec![0u8; line_len * 3 + line_len / 2];
    let n = r.write_newest(&mut out, None);
    let text = std::str::from_utf8(&out[..n]).unwrap();
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        all[7..].iter().map(String::as_str).collect::<Vec<_>>()
    );
    // Only one subject: its newest two.
    let n = r.write_newest(&mut out[..line_len * 2], Some(1 << 32));
    let text = std::str::from_utf8(&out[..n]).unwrap();
    assert!(text.lines().all(|l| l.contains("Target#0.1")), "{text}");
    assert_eq!(text.lines().count(), 2);
    assert!(text.ends_with("event 8\n"), "{text}");
    // Too small for one line: nothing.
    assert_eq!(r.write_newest(&mut out[..5], None), 0);
}
