//! PowerShell scripts passed as `-EncodedCommand` (base64 of UTF-16LE), so
//! they survive cmd.exe, ssh and PowerShell quoting unchanged.

use crate::runner::Cmd;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (for tests and the dry-run listing).
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The `-EncodedCommand` value for `script`.
pub fn encode_command(script: &str) -> String {
    let utf16: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    base64(&utf16)
}

/// The script inside an `-EncodedCommand` value.
pub fn decode_command(encoded: &str) -> Option<String> {
    let bytes = base64_decode(encoded)?;
    if bytes.len() % 2 != 0 {
        return None;
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).ok()
}

/// A PowerShell string literal: `'it''s'`.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The arguments after the program name for running `script`.
pub fn script_args(script: &str, interactive: bool) -> Vec<String> {
    let mut args = vec!["-NoProfile".to_owned()];
    if !interactive {
        args.push("-NonInteractive".to_owned());
    }
    args.extend([
        "-ExecutionPolicy".to_owned(),
        "Bypass".to_owned(),
        "-EncodedCommand".to_owned(),
        encode_command(script),
    ]);
    args
}

/// `powershell.exe -NoProfile [-NonInteractive] -ExecutionPolicy Bypass -EncodedCommand ...`.
pub fn local_script(script: &str, interactive: bool) -> Cmd {
    Cmd::new("powershell.exe").args(script_args(script, interactive))
}

/// The same as one command line (for running through ssh on the VM).
pub fn remote_command_line(program: &str, script: &str) -> String {
    std::iter::once(program.to_owned())
        .chain(script_args(script, false))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), enc);
            assert_eq!(base64_decode(enc).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn encoded_command_round_trips() {
        // What `[Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes('dir'))` gives.
        assert_eq!(encode_command("dir"), "ZABpAHIA");
        let script = "Write-Output 'ä €'\n";
        assert_eq!(decode_command(&encode_command(script)).unwrap(), script);
        assert_eq!(quote("it's"), "'it''s'");
    }
}
