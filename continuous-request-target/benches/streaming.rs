//! Streaming benchmark (filled in by the CRT benchmark work; see issue 5).
fn main() {}
