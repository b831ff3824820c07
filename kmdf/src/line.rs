//! [`Line`]: a fixed, NUL-terminated text buffer for `DbgPrint`, filled with
//! `write!` without allocating (the panic handler and the shell's log lines
//! use it; allocating while panicking or at `DISPATCH_LEVEL` is not an
//! option).
//!
//! ```
//! use core::fmt::Write;
//! let mut line = dmf_kmdf::line::Line::<8>::new();
//! write!(line, "{}-{}", "abc", 12345).unwrap();
//! assert_eq!(line.as_str(), "abc-123"); // cut to 7 bytes + NUL
//! assert_eq!(line.as_bytes_with_nul(), b"abc-123\0");
//! ```

use core::fmt;

/// Up to `N - 1` bytes of text and a terminating NUL. Text that does not fit
/// is cut (at a character boundary); writing never fails.
pub struct Line<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Line<N> {
    /// An empty line.
    pub const fn new() -> Self {
        const {
            assert!(N > 0, "a Line needs room for its NUL");
        }
        Line {
            buf: [0; N],
            len: 0,
        }
    }

    /// The text written so far (without the NUL).
    pub fn as_str(&self) -> &str {
        // The writer only ever copies whole characters.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }

    /// The text and its NUL terminator, for `%s`.
    pub fn as_bytes_with_nul(&self) -> &[u8] {
        &self.buf[..=self.len]
    }

    /// A pointer to the NUL-terminated text.
    pub fn as_ptr(&self) -> *const u8 {
        self.buf.as_ptr()
    }
}

impl<const N: usize> Default for Line<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for Line<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - 1 - self.len;
        let mut n = s.len().min(room);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        self.buf[self.len] = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn cuts_at_character_boundaries() {
        let mut line = Line::<5>::new();
        write!(line, "ab\u{e9}\u{e9}").unwrap(); // a b é(2) é(2)
        assert_eq!(line.as_str(), "ab\u{e9}");
        assert_eq!(line.as_bytes_with_nul().last(), Some(&0));
    }

    #[test]
    fn empty_line_is_just_nul() {
        let line = Line::<1>::new();
        assert_eq!(line.as_bytes_with_nul(), b"\0");
    }
}
