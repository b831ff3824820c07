//! `.inx` -> `.inf`, the way the WDK's `stampinf` does it.
//!
//! `stampinf -f x.inf -d <date> -a <arch> -c x.cat -v <version> -k 1.33`:
//!
//! * `$ARCH$` becomes the architecture (`amd64`, `arm64`) everywhere;
//! * `$KMDFVERSION$` becomes the KMDF version (`1.33`) and
//!   `$KMDFCOINSTALLERVERSION$` the co-installer number (`01033`);
//! * in `[Version]`, `DriverVer = MM/DD/YYYY,w.x.y.z` and
//!   `CatalogFile = <name>.cat` replace existing entries (a trailing comment
//!   on such a line is dropped) or are added after the section's last entry.
//!
//! The file keeps its encoding (UTF-16LE with BOM, UTF-8 with BOM, or
//! ASCII/UTF-8 without BOM) and its line endings.

use std::collections::HashMap;
use std::fmt;

/// How an INF file was encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InfEncoding {
    /// UTF-16 little-endian with a `FF FE` byte-order mark (what Visual
    /// Studio's driver templates use).
    Utf16LeBom,
    /// UTF-8 with an `EF BB BF` byte-order mark.
    Utf8Bom,
    /// Plain ASCII (or UTF-8) without a byte-order mark.
    Ascii,
}

/// Why an INF could not be stamped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InfError {
    /// UTF-16 big-endian is not accepted by Windows' INF parser.
    #[error("the INF is UTF-16 big-endian: save it as UTF-16LE with BOM or as ASCII")]
    Utf16Be,
    /// UTF-16LE data with a dangling byte or an unpaired surrogate.
    #[error("the INF starts with a UTF-16LE BOM but is not valid UTF-16LE text")]
    BadUtf16,
    /// Bytes that are neither UTF-16LE (with BOM) nor ASCII/UTF-8.
    #[error("the INF is neither UTF-16LE with BOM nor ASCII/UTF-8 (bad byte at offset {offset}): save it as UTF-16LE with BOM or as ASCII")]
    NotText {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// Nothing to put `DriverVer` and `CatalogFile` into.
    #[error("the INF has no [Version] section")]
    NoVersionSection,
    /// `DriverVer` version not of the form `w.x.y.z`, a part of 65535 or
    /// more, or `0.0.0.0`.
    #[error("invalid driver version `{0}`: expected w.x.y.z, each part 0..=65534, not all zero (e.g. 1.0.0.1)")]
    BadVersion(String),
    /// KMDF version not of the form `major.minor`.
    #[error("invalid KMDF version `{0}`: expected major.minor, e.g. 1.33")]
    BadKmdfVersion(String),
    /// Date not of the form `MM/DD/YYYY`, or not a date of the calendar.
    #[error("invalid driver date `{0}`: expected MM/DD/YYYY, a real date from 1980 on (e.g. 03/07/2026)")]
    BadDate(String),
    /// Date after today (local time), which inf2cat `/uselocaltime` and
    /// Windows refuse.
    #[error("driver date {date} is in the future (today is {today}, local time): inf2cat refuses it; pass an earlier --driver-date or check SOURCE_DATE_EPOCH and the clock")]
    FutureDate {
        /// The date asked for.
        date: String,
        /// Today, local time.
        today: String,
    },
}

/// A `DriverVer` date (ordered by year, month, day).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DriverDate {
    /// Year, e.g. 2026.
    pub year: u16,
    /// Month 1..=12.
    pub month: u8,
    /// Day 1..=31.
    pub day: u8,
}

impl DriverDate {
    /// The UTC date `secs` seconds after the Unix epoch (see
    /// [`DriverDate::local_from_unix_secs`] for what `DriverVer` uses).
    pub fn from_unix_secs(secs: u64) -> Self {
        let days = secs / 86_400;
        // Howard Hinnant's civil_from_days, for days since 1970-01-01.
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        Self {
            year: year as u16,
            month: month as u8,
            day: day as u8,
        }
    }

    /// The date in the local time zone (`$TZ`, else the system's) `secs`
    /// seconds after the Unix epoch: the calendar inf2cat `/uselocaltime`
    /// compares `DriverVer` against.
    pub fn local_from_unix_secs(secs: u64) -> Self {
        Self::from_zoned(&local_time(secs))
    }

    fn from_zoned(z: &jiff::ZonedDateTime) -> Self {
        Self {
            year: z.year() as u16,
            month: z.month() as u8,
            day: z.day() as u8,
        }
    }

    /// Number of days in `month` of `year` (Gregorian calendar).
    pub fn days_in_month(year: u16, month: u8) -> u8 {
        match month {
            4 | 6 | 9 | 11 => 30,
            2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
            2 => 28,
            _ => 31,
        }
    }

    /// Fails when this date is after `today`.
    pub fn check_not_after(self, today: DriverDate) -> Result<(), InfError> {
        if self > today {
            return Err(InfError::FutureDate {
                date: self.to_string(),
                today: today.to_string(),
            });
        }
        Ok(())
    }

    /// Parses `MM/DD/YYYY`: a real calendar date from 1980 on.
    pub fn parse(s: &str) -> Result<Self, InfError> {
        let bad = || InfError::BadDate(s.to_owned());
        let parts: Vec<&str> = s.split('/').collect();
        let [m, d, y] = parts.as_slice() else {
            return Err(bad());
        };
        let month: u8 = m.parse().map_err(|_| bad())?;
        let day: u8 = d.parse().map_err(|_| bad())?;
        let year: u16 = y.parse().map_err(|_| bad())?;
        if y.len() != 4
            || year < 1980
            || !(1..=12).contains(&month)
            || day == 0
            || day > Self::days_in_month(year, month)
        {
            return Err(bad());
        }
        Ok(Self { year, month, day })
    }
}

impl fmt::Display for DriverDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}/{:02}/{:04}", self.month, self.day, self.year)
    }
}

/// What to stamp into the INF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StampParams {
    /// Replacement for `$ARCH$`: `amd64` or `arm64`.
    pub arch: String,
    /// `CatalogFile` value, e.g. `sample_driver.cat`.
    pub catalog_file: String,
    /// `DriverVer` date.
    pub date: DriverDate,
    /// `DriverVer` version, `w.x.y.z`.
    pub version: String,
    /// KMDF version, `major.minor`.
    pub kmdf_version: String,
}

/// The local time (`$TZ`, else the system time zone; UTC if neither can be
/// read) `secs` seconds after the Unix epoch.
pub fn local_time(secs: u64) -> jiff::ZonedDateTime {
    let ts = jiff::Timestamp::from_second(i64::try_from(secs).unwrap_or(i64::MAX))
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.to_zoned_datetime(jiff::tz::TimeZone::system())
}

/// The default `DriverVer` version of a build at local time `secs`:
/// the crate's `major.minor.patch` and, as fourth part, the local time of
/// day in 2-second steps (0..=43199). Together with the (local) date this
/// makes every build newer than the one before it, even on the same day,
/// so `pnputil /add-driver /install` replaces the installed driver.
pub fn build_version(crate_version: &str, secs: u64) -> Result<String, InfError> {
    let base = driver_version(crate_version)?;
    let mut parts: Vec<&str> = base.split('.').collect();
    let z = local_time(secs);
    let seconds_of_day =
        i32::from(z.hour()) * 3600 + i32::from(z.minute()) * 60 + i32::from(z.second());
    let build = (seconds_of_day / 2).to_string();
    parts[3] = &build;
    driver_version(&parts.join("."))
}

/// Turns a crate version (`0.1.0`, `1.2.3-beta.1`) or a `w.x.y.z` string
/// into a four-part driver version.
pub fn driver_version(v: &str) -> Result<String, InfError> {
    let core = v.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return Err(InfError::BadVersion(v.to_owned()));
    }
    let mut nums = Vec::with_capacity(4);
    for p in &parts {
        let n: u16 = p.parse().map_err(|_| InfError::BadVersion(v.to_owned()))?;
        if n == u16::MAX {
            return Err(InfError::BadVersion(v.to_owned()));
        }
        nums.push(n);
    }
    if nums.iter().all(|&n| n == 0) {
        return Err(InfError::BadVersion(v.to_owned()));
    }
    nums.resize(4, 0);
    Ok(nums
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join("."))
}

/// `1.33` -> `01033`, the number in `WdfCoInstaller01033.dll`.
pub fn kmdf_coinstaller_version(kmdf: &str) -> Result<String, InfError> {
    let bad = || InfError::BadKmdfVersion(kmdf.to_owned());
    let (major, minor) = kmdf.split_once('.').ok_or_else(bad)?;
    let major: u32 = major.parse().map_err(|_| bad())?;
    let minor: u32 = minor.parse().map_err(|_| bad())?;
    if major > 99 || minor > 999 {
        return Err(bad());
    }
    Ok(format!("{major:02}{minor:03}"))
}

/// Decodes INF bytes, reporting which encoding they were in.
pub fn decode(bytes: &[u8]) -> Result<(String, InfEncoding), InfError> {
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        if rest.len() % 2 != 0 {
            return Err(InfError::BadUtf16);
        }
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let text = String::from_utf16(&units).map_err(|_| InfError::BadUtf16)?;
        return Ok((text, InfEncoding::Utf16LeBom));
    }
    if bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(InfError::Utf16Be);
    }
    let (body, enc) = match bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        Some(rest) => (rest, InfEncoding::Utf8Bom),
        None => (bytes, InfEncoding::Ascii),
    };
    let offset = bytes.len() - body.len();
    match std::str::from_utf8(body) {
        Ok(s) => Ok((s.to_owned(), enc)),
        Err(e) => Err(InfError::NotText {
            offset: offset + e.valid_up_to(),
        }),
    }
}

/// Encodes text in the given INF encoding.
pub fn encode(text: &str, enc: InfEncoding) -> Vec<u8> {
    match enc {
        InfEncoding::Utf16LeBom => {
            let mut out = vec![0xFF, 0xFE];
            for u in text.encode_utf16() {
                out.extend_from_slice(&u.to_le_bytes());
            }
            out
        }
        InfEncoding::Utf8Bom => {
            let mut out = vec![0xEF, 0xBB, 0xBF];
            out.extend_from_slice(text.as_bytes());
            out
        }
        InfEncoding::Ascii => text.as_bytes().to_vec(),
    }
}

/// Stamps INF bytes, keeping their encoding.
pub fn stamp(bytes: &[u8], params: &StampParams) -> Result<Vec<u8>, InfError> {
    let (text, enc) = decode(bytes)?;
    Ok(encode(&stamp_text(&text, params)?, enc))
}

/// A line of INF text split into its content and its line ending.
fn split_eol(line: &str) -> (&str, &str) {
    if let Some(c) = line.strip_suffix("\r\n") {
        (c, "\r\n")
    } else if let Some(c) = line.strip_suffix('\n') {
        (c, "\n")
    } else {
        (line, "")
    }
}

/// The line without its `;` comment (quotes respected).
fn strip_comment(line: &str) -> &str {
    let mut in_quotes = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ';' if !in_quotes => return &line[..i],
            _ => {}
        }
    }
    line
}

/// `[Name]` -> `Some("Name")`.
fn section_name(content: &str) -> Option<&str> {
    let t = strip_comment(content).trim();
    let inner = t.strip_prefix('[')?;
    let end = inner.find(']')?;
    Some(inner[..end].trim())
}

/// `key = value` -> `(key, offset of '=')`.
fn key_of(content: &str) -> Option<(&str, usize)> {
    let code = strip_comment(content);
    let eq = code.find('=')?;
    Some((code[..eq].trim(), eq))
}

/// Stamps INF text (see the module documentation).
pub fn stamp_text(text: &str, params: &StampParams) -> Result<String, InfError> {
    driver_version(&params.version)?;
    let coinstaller = kmdf_coinstaller_version(&params.kmdf_version)?;
    let text = text
        .replace("$ARCH$", &params.arch)
        .replace("$KMDFVERSION$", &params.kmdf_version)
        .replace("$KMDFCOINSTALLERVERSION$", &coinstaller);
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let driver_ver = format!("{},{}", params.date, params.version);
    let wanted: [(&str, &str); 2] = [
        ("DriverVer", driver_ver.as_str()),
        ("CatalogFile", params.catalog_file.as_str()),
    ];

    let mut out: Vec<String> = Vec::new();
    let mut seen_version = false;
    let mut in_version = false;
    let mut found = [false; 2];
    // Index in `out` after which missing entries go.
    let mut insert_after: Option<usize> = None;

    let flush = |out: &mut Vec<String>, found: &[bool; 2], after: Option<usize>| {
        let Some(after) = after else { return };
        let missing: Vec<String> = wanted
            .iter()
            .zip(found)
            .filter(|(_, f)| !**f)
            .map(|((k, v), _)| format!("{k} = {v}{eol}"))
            .collect();
        if missing.is_empty() {
            return;
        }
        if !out[after].ends_with('\n') {
            out[after].push_str(eol);
        }
        for (i, line) in missing.into_iter().enumerate() {
            out.insert(after + 1 + i, line);
        }
    };

    for line in text.split_inclusive('\n') {
        let (content, line_eol) = split_eol(line);
        if let Some(name) = section_name(content) {
            if in_version {
                flush(&mut out, &found, insert_after);
                in_version = false;
            }
            if !seen_version && name.eq_ignore_ascii_case("Version") {
                seen_version = true;
                in_version = true;
                insert_after = Some(out.len());
            }
            out.push(line.to_owned());
            continue;
        }
        if in_version {
            if let Some((key, eq)) = key_of(content) {
                if let Some(i) = wanted.iter().position(|(k, _)| key.eq_ignore_ascii_case(k)) {
                    let mut stamped = content[..=eq].to_owned();
                    if content[eq + 1..].starts_with([' ', '\t'])
                        || content[..eq].ends_with([' ', '\t'])
                    {
                        stamped.push(' ');
                    }
                    stamped.push_str(wanted[i].1);
                    stamped.push_str(line_eol);
                    found[i] = true;
                    insert_after = Some(out.len());
                    out.push(stamped);
                    continue;
                }
                insert_after = Some(out.len());
            }
        }
        out.push(line.to_owned());
    }
    if in_version {
        flush(&mut out, &found, insert_after);
    }
    if !seen_version {
        return Err(InfError::NoVersionSection);
    }
    Ok(out.concat())
}

/// `DriverVer = MM/DD/YYYY,w.x.y.z` of `[Version]`: (date, version).
pub fn driver_ver_of(text: &str) -> Option<(String, String)> {
    let mut in_version = false;
    for line in text.lines() {
        if let Some(name) = section_name(line) {
            in_version = name.eq_ignore_ascii_case("Version");
            continue;
        }
        if !in_version {
            continue;
        }
        if let Some((key, eq)) = key_of(line) {
            if key.eq_ignore_ascii_case("DriverVer") {
                let value = strip_comment(line)[eq + 1..].trim();
                let (date, version) = value.split_once(',')?;
                return Some((date.trim().to_owned(), version.trim().to_owned()));
            }
        }
    }
    None
}

/// The files `[SourceDisksFiles]` and `[SourceDisksFiles.<arch>]` name (in
/// order, de-duplicated case-insensitively): every one must be in the
/// package and listed in its catalog.
pub fn source_disks_files(text: &str, arch: &str) -> Vec<String> {
    let wanted = format!("sourcedisksfiles.{}", arch.to_ascii_lowercase());
    let mut inside = false;
    let mut files: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(name) = section_name(line) {
            let n = name.to_ascii_lowercase();
            inside = n == "sourcedisksfiles" || n == wanted;
            continue;
        }
        if !inside {
            continue;
        }
        let code = strip_comment(line);
        let key = code.split_once('=').map_or(code, |(k, _)| k).trim();
        let key = key.trim_matches('"').trim();
        if !key.is_empty() && !files.iter().any(|f| f.eq_ignore_ascii_case(key)) {
            files.push(key.to_owned());
        }
    }
    files
}

/// The hardware IDs of every model line reachable from `[Manufacturer]`,
/// lower-cased and de-duplicated (what inf2cat lists as `HWID1..n`).
pub fn hardware_ids(text: &str) -> Vec<String> {
    let mut sections: HashMap<String, Vec<&str>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(name) = section_name(line) {
            let key = name.to_ascii_lowercase();
            sections.entry(key.clone()).or_default();
            current = Some(key);
        } else if let Some(cur) = &current {
            if let Some(v) = sections.get_mut(cur) {
                v.push(line);
            }
        }
    }
    let values = |line: &str| -> Vec<String> {
        let code = strip_comment(line);
        match code.split_once('=') {
            Some((_, v)) => v
                .split(',')
                .map(|p| p.trim().trim_matches('"').to_owned())
                .collect(),
            None => Vec::new(),
        }
    };
    let mut model_sections = Vec::new();
    for line in sections.get("manufacturer").into_iter().flatten() {
        let vals = values(line);
        let Some((base, decorations)) = vals.split_first() else {
            continue;
        };
        if base.is_empty() {
            continue;
        }
        model_sections.push(base.to_ascii_lowercase());
        for d in decorations.iter().filter(|d| !d.is_empty()) {
            model_sections.push(format!("{base}.{d}").to_ascii_lowercase());
        }
    }
    let mut ids: Vec<String> = Vec::new();
    for section in model_sections {
        for line in sections.get(&section).into_iter().flatten() {
            for id in values(line).into_iter().skip(1) {
                let id = id.to_ascii_lowercase();
                if !id.is_empty() && !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    const INX: &str = ";\n; sample_driver.inx\n;\n\n[Version]\nSignature   = \"$WINDOWS NT$\"\nClass       = System\nClassGuid   = {4d36e97d-e325-11ce-bfc1-08002be10318}\nProvider    = %ManufacturerName%\nCatalogFile = KMDF.cat ; placeholder\nDriverVer   = ; TODO: set DriverVer in stampinf property pages\nPnpLockdown = 1\n\n[Manufacturer]\n%ManufacturerName% = Standard,NT$ARCH$.10.0...16299\n\n[Standard.NT$ARCH$.10.0...16299]\n%Dev.DeviceDesc% = Dev_Device, Root\\DMF_SAMPLE_DRIVER ; root-enumerated\n\n[Dev_Device.NT.Wdf]\nKmdfService = sample_driver, wdfsect\n\n[wdfsect]\nKmdfLibraryVersion = $KMDFVERSION$\n";

    const INF: &str = ";\n; sample_driver.inx\n;\n\n[Version]\nSignature   = \"$WINDOWS NT$\"\nClass       = System\nClassGuid   = {4d36e97d-e325-11ce-bfc1-08002be10318}\nProvider    = %ManufacturerName%\nCatalogFile = sample_driver.cat\nDriverVer   = 03/07/2026,0.1.0.0\nPnpLockdown = 1\n\n[Manufacturer]\n%ManufacturerName% = Standard,NTamd64.10.0...16299\n\n[Standard.NTamd64.10.0...16299]\n%Dev.DeviceDesc% = Dev_Device, Root\\DMF_SAMPLE_DRIVER ; root-enumerated\n\n[Dev_Device.NT.Wdf]\nKmdfService = sample_driver, wdfsect\n\n[wdfsect]\nKmdfLibraryVersion = 1.33\n";

    fn params() -> StampParams {
        StampParams {
            arch: "amd64".into(),
            catalog_file: "sample_driver.cat".into(),
            date: DriverDate::parse("03/07/2026").unwrap(),
            version: "0.1.0.0".into(),
            kmdf_version: "1.33".into(),
        }
    }

    #[test]
    fn stamps_ascii() {
        let out = stamp(INX.as_bytes(), &params()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), INF);
    }

    #[test]
    fn stamps_utf16le_with_bom_and_keeps_encoding_and_crlf() {
        let crlf_in = INX.replace('\n', "\r\n");
        let input = encode(&crlf_in, InfEncoding::Utf16LeBom);
        assert_eq!(&input[..4], &[0xFF, 0xFE, b';', 0]);
        let out = stamp(&input, &params()).unwrap();
        assert_eq!(
            out,
            encode(&INF.replace('\n', "\r\n"), InfEncoding::Utf16LeBom)
        );
    }

    #[test]
    fn stamps_utf8_with_bom() {
        let out = stamp(&encode(INX, InfEncoding::Utf8Bom), &params()).unwrap();
        assert_eq!(out, encode(INF, InfEncoding::Utf8Bom));
    }

    #[test]
    fn adds_missing_entries_at_end_of_version_section() {
        let inx = "[Version]\r\nSignature=\"$WINDOWS NT$\"\r\nClass=System\r\n\r\n; comment\r\n[Strings]\r\nA=\"b\"";
        let out = stamp_text(inx, &params()).unwrap();
        assert_eq!(
            out,
            "[Version]\r\nSignature=\"$WINDOWS NT$\"\r\nClass=System\r\nDriverVer = 03/07/2026,0.1.0.0\r\nCatalogFile = sample_driver.cat\r\n\r\n; comment\r\n[Strings]\r\nA=\"b\""
        );
        // [Version] as the last section, no newline at the end of the file.
        let out = stamp_text("[version]\nSignature=\"$WINDOWS NT$\"", &params()).unwrap();
        assert_eq!(
            out,
            "[version]\nSignature=\"$WINDOWS NT$\"\nDriverVer = 03/07/2026,0.1.0.0\nCatalogFile = sample_driver.cat\n"
        );
    }

    #[test]
    fn stamps_coinstaller_version_and_arm64() {
        let mut p = params();
        p.arch = "arm64".into();
        let out = stamp_text(
            "[Version]\nSignature=\"$WINDOWS NT$\"\n[CoInst]\nWdfCoInstaller$KMDFCOINSTALLERVERSION$.dll\n[M.NT$ARCH$]\n",
            &p,
        )
        .unwrap();
        assert!(out.contains("WdfCoInstaller01033.dll"));
        assert!(out.contains("[M.NTarm64]"));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            stamp_text("[Strings]\n", &params()),
            Err(InfError::NoVersionSection)
        );
        assert_eq!(decode(&[0xFE, 0xFF, 0, b'[']), Err(InfError::Utf16Be));
        assert_eq!(decode(&[0xFF, 0xFE, b'[']), Err(InfError::BadUtf16));
        assert_eq!(
            decode(b"[Version]\n\xE9t\xE9"),
            Err(InfError::NotText { offset: 10 })
        );
        let mut p = params();
        p.version = "1.2.3.70000".into();
        assert!(matches!(stamp_text(INX, &p), Err(InfError::BadVersion(_))));
        p = params();
        p.kmdf_version = "133".into();
        assert!(matches!(
            stamp_text(INX, &p),
            Err(InfError::BadKmdfVersion(_))
        ));
        assert!(DriverDate::parse("13/01/2026").is_err());
        assert!(DriverDate::parse("1/2/26").is_err());
        for impossible in [
            "02/31/2026",
            "02/29/2026",
            "04/31/2026",
            "00/10/2026",
            "01/00/2026",
            "02/29/1900",
            "01/01/1979",
        ] {
            assert!(
                matches!(DriverDate::parse(impossible), Err(InfError::BadDate(_))),
                "{impossible} accepted"
            );
        }
        assert_eq!(DriverDate::parse("02/29/2024").unwrap().day, 29);
        assert_eq!(DriverDate::parse("02/29/2000").unwrap().day, 29);
        assert_eq!(DriverDate::parse("12/31/2026").unwrap().day, 31);
        let today = DriverDate::parse("03/07/2026").unwrap();
        assert!(today.check_not_after(today).is_ok());
        assert!(DriverDate::parse("03/06/2026")
            .unwrap()
            .check_not_after(today)
            .is_ok());
        assert_eq!(
            DriverDate::parse("03/08/2026")
                .unwrap()
                .check_not_after(today),
            Err(InfError::FutureDate {
                date: "03/08/2026".into(),
                today: "03/07/2026".into()
            })
        );
        for bad in [
            "0.0.0.0",
            "0.0",
            "1.2.3.65535",
            "65535.0.0.1",
            "1.2.3.70000",
            "1.a.3.4",
            "",
            "1..2",
        ] {
            assert!(
                matches!(driver_version(bad), Err(InfError::BadVersion(_))),
                "{bad} accepted"
            );
        }
        assert_eq!(driver_version("65534.1.2.3").unwrap(), "65534.1.2.3");
    }

    #[test]
    fn versions_and_dates() {
        assert_eq!(driver_version("0.1.0").unwrap(), "0.1.0.0");
        assert_eq!(driver_version("1.2.3-beta.1+x").unwrap(), "1.2.3.0");
        assert_eq!(driver_version("10.0.1.2").unwrap(), "10.0.1.2");
        assert!(driver_version("1.2.3.4.5").is_err());
        assert_eq!(kmdf_coinstaller_version("1.9").unwrap(), "01009");
        assert_eq!(DriverDate::from_unix_secs(0).to_string(), "01/01/1970");
        assert_eq!(
            DriverDate::from_unix_secs(951_782_400).to_string(),
            "02/29/2000"
        );
        assert_eq!(
            DriverDate::from_unix_secs(1_772_841_600).to_string(),
            "03/07/2026"
        );
    }

    #[test]
    fn reads_driver_ver_back() {
        assert_eq!(
            driver_ver_of(INF),
            Some(("03/07/2026".to_owned(), "0.1.0.0".to_owned()))
        );
        assert_eq!(driver_ver_of(INX), None);
        assert_eq!(
            driver_ver_of("[Strings]\nDriverVer = 01/01/2026,1.0.0.0\n"),
            None
        );
    }

    #[test]
    fn lists_source_disks_files_of_the_arch() {
        let inf = "[Version]\n[SourceDisksFiles]\nsample_driver.sys = 1,,\n\"helper.dll\" = 1 ; comment\n[SourceDisksFiles.amd64]\nx64only.bin=1\nSAMPLE_DRIVER.SYS=1\n[SourceDisksFiles.arm64]\narm.bin=1\n[Strings]\na=b\n";
        assert_eq!(
            source_disks_files(inf, "amd64"),
            ["sample_driver.sys", "helper.dll", "x64only.bin"]
        );
        assert_eq!(
            source_disks_files(inf, "arm64"),
            ["sample_driver.sys", "helper.dll", "arm.bin"]
        );
        assert!(source_disks_files("[Version]\n", "amd64").is_empty());
    }

    #[test]
    fn finds_hardware_ids() {
        let inf = stamp_text(INX, &params()).unwrap();
        assert_eq!(
            hardware_ids(&inf),
            vec!["root\\dmf_sample_driver".to_owned()]
        );
    }
}
