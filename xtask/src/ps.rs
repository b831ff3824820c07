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

/// The characters PowerShell treats as a single quote: `'` and the
/// typographic U+2018..=U+201B. Inside a single-quoted string each must be
/// doubled, or it ends the string.
pub const SINGLE_QUOTES: [char; 5] = ['\'', '\u{2018}', '\u{2019}', '\u{201A}', '\u{201B}'];

/// A PowerShell single-quoted string literal: `'it''s'`. Every character
/// PowerShell takes for a single quote ([`SINGLE_QUOTES`]) is doubled.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if SINGLE_QUOTES.contains(&c) {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// Decodes PowerShell's serialized error stream (`#< CLIXML` followed by
/// `<Objs>` with `<S S="Error">` strings, as sent over a remote or
/// non-interactive session) into plain text. Other text is returned as is.
pub fn decode_clixml(text: &str) -> String {
    let Some(start) = text.find("#< CLIXML") else {
        return text.to_owned();
    };
    let mut out = text[..start].to_owned();
    let mut rest = &text[start + "#< CLIXML".len()..];
    let mut line = String::new();
    while let Some(open) = rest.find("<S S=\"") {
        let after = &rest[open + 6..];
        let Some(q) = after.find('"') else { break };
        let stream = &after[..q];
        let Some(gt) = after.find('>') else { break };
        let body_start = &after[gt + 1..];
        let Some(close) = body_start.find("</S>") else {
            break;
        };
        let body = unescape_clixml(&body_start[..close]);
        if stream == "Error" || stream == "Warning" {
            if stream == "Warning" && line.is_empty() {
                line.push_str("WARNING: ");
            }
            line.push_str(&body);
            // Each record ends in CR LF; lines are kept together.
            while let Some(nl) = line.find('\n') {
                let l: String = line.drain(..=nl).collect();
                let l = l.trim_end();
                if !l.is_empty() {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
        rest = &body_start[close + 4..];
    }
    if !line.trim().is_empty() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `_x000D__x000A_` -> CR LF, and the five XML entities.
fn unescape_clixml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(['_', '&']) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if rest.starts_with('_') {
            let code = rest.get(2..6).and_then(|h| u32::from_str_radix(h, 16).ok());
            if rest.get(1..2) == Some("x") && rest.get(6..7) == Some("_") {
                if let Some(c) = code.and_then(char::from_u32) {
                    out.push(c);
                    rest = &rest[7..];
                    continue;
                }
            }
            out.push('_');
            rest = &rest[1..];
        } else {
            let entities = [
                ("&lt;", '<'),
                ("&gt;", '>'),
                ("&amp;", '&'),
                ("&quot;", '"'),
                ("&apos;", '\''),
            ];
            match entities.iter().find(|(e, _)| rest.starts_with(e)) {
                Some((e, c)) => {
                    out.push(*c);
                    rest = &rest[e.len()..];
                }
                None => {
                    out.push('&');
                    rest = &rest[1..];
                }
            }
        }
    }
    out.push_str(rest);
    out
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

/// The same as one command line (for running through ssh on the VM, whose
/// OpenSSH server hands it to cmd.exe or another shell). The program is
/// double-quoted when it contains anything but plain path characters
/// (`C:\Program Files\PowerShell\7\pwsh.exe`); the other arguments never do.
pub fn remote_command_line(program: &str, script: &str) -> String {
    let plain = !program.is_empty()
        && program
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '\\' | '/' | ':' | '.' | '-' | '_'));
    let program = if plain {
        program.to_owned()
    } else {
        format!("\"{}\"", program.replace('"', ""))
    };
    std::iter::once(program)
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

    #[test]
    fn quote_doubles_every_single_quote_powershell_knows() {
        assert_eq!(
            quote("a\u{2018}b\u{2019}c\u{201A}d\u{201B}e'f"),
            "'a\u{2018}\u{2018}b\u{2019}\u{2019}c\u{201A}\u{201A}d\u{201B}\u{201B}e''f'"
        );
        assert_eq!(quote("plain"), "'plain'");
        assert_eq!(quote("\u{201C}double\u{201D}"), "'\u{201C}double\u{201D}'");
    }

    #[test]
    fn remote_program_with_spaces_is_quoted() {
        let line = remote_command_line(r"C:\Program Files\PowerShell\7\pwsh.exe", "dir");
        assert!(
            line.starts_with(r#""C:\Program Files\PowerShell\7\pwsh.exe" -NoProfile "#),
            "{line}"
        );
        let line = remote_command_line("powershell.exe", "dir");
        assert!(line.starts_with("powershell.exe -NoProfile "), "{line}");
    }

    #[test]
    fn clixml_error_stream_becomes_text() {
        let raw = "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"><Obj S=\"progress\" RefId=\"0\"><TN RefId=\"0\"><T>System.Management.Automation.PSCustomObject</T></TN></Obj><S S=\"Error\">pnputil failed: &lt;oem7.inf&gt; it_x0027_s _x000D__x000A_</S><S S=\"Error\">At line:1 char:1_x000D__x000A_</S><S S=\"Warning\">careful_x000D__x000A_</S></Objs>";
        assert_eq!(
            decode_clixml(raw),
            "pnputil failed: <oem7.inf> it's\nAt line:1 char:1\nWARNING: careful\n"
        );
        assert_eq!(decode_clixml("plain error\n"), "plain error\n");
    }
}
