//! The driver's settings: defaults, validation, and the INX that sets them.

use dmf_kmdf::parameters::{Resolved, UlongSetting};
use sample_driver::driver::{
    SampleConfig, IOCTL_TESTS_ZEROBUFFER, OUTPUT_BUFFER_SIZE, REQUESTS_PER_TARGET, SETTINGS,
};

/// What the shell does with registry values: resolve, keep the fallbacks.
fn config_from(values: &[(&str, u32)]) -> (SampleConfig, Vec<(&'static str, u32)>) {
    let mut fallbacks = Vec::new();
    let config = SampleConfig::from_settings(|s: &UlongSetting| {
        let raw = values.iter().find(|(n, _)| *n == s.name).map(|(_, v)| *v);
        let (value, how) = s.resolve(raw);
        if let Resolved::OutOfRange(bad) = how {
            fallbacks.push((s.name, bad));
        }
        value
    });
    (config, fallbacks)
}

#[test]
fn absent_values_take_the_documented_defaults() {
    let (config, fallbacks) = config_from(&[]);
    assert_eq!(config, SampleConfig::default());
    assert_eq!(config.requests_per_target, 4);
    assert_eq!(config.output_size, 4096);
    assert_eq!(config.ioctl, IOCTL_TESTS_ZEROBUFFER);
    assert!(fallbacks.is_empty());
    assert!(SETTINGS.iter().all(UlongSetting::is_valid));
}

#[test]
fn values_in_range_are_used_and_out_of_range_fall_back() {
    let (config, fallbacks) = config_from(&[
        ("RequestsPerTarget", 16),
        ("OutputBufferSize", 8),
        ("StreamedIoctl", 0x0022_2003),
    ]);
    assert_eq!(config.requests_per_target, 16);
    assert_eq!(config.output_size, OUTPUT_BUFFER_SIZE.default);
    assert_eq!(config.ioctl, 0x0022_2003);
    assert_eq!(fallbacks, [("OutputBufferSize", 8)]);

    let (config, fallbacks) = config_from(&[("RequestsPerTarget", 65), ("StreamedIoctl", 0)]);
    assert_eq!(config.requests_per_target, REQUESTS_PER_TARGET.default);
    assert_eq!(config.ioctl, IOCTL_TESTS_ZEROBUFFER);
    assert_eq!(fallbacks, [("StreamedIoctl", 0), ("RequestsPerTarget", 65)]);
}

#[test]
fn the_inx_sets_every_setting_to_its_default() {
    let inx =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sample_driver.inx")).unwrap();
    // The driver's own settings, and the shell's `TraceLevel`.
    for setting in SETTINGS.iter().chain([&dmf_kmdf::debug_print::TRACE_LEVEL]) {
        let line = inx
            .lines()
            .find(|l| {
                l.starts_with("HKR, Parameters,") && l.contains(&format!(" {},", setting.name))
            })
            .unwrap_or_else(|| panic!("no AddReg line for {}", setting.name));
        let fields: Vec<&str> = line
            .split(';')
            .next()
            .unwrap()
            .split(',')
            .map(str::trim)
            .collect();
        assert_eq!(fields[3], "0x00010003", "{line}: REG_DWORD, no-clobber");
        let value = fields[4];
        let value = value.strip_prefix("0x").map_or_else(
            || value.parse().unwrap(),
            |h| u32::from_str_radix(h, 16).unwrap(),
        );
        assert_eq!(value, setting.default, "{line}");
    }
}
