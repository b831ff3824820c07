//! The driver's identity comes from its INX and `Cargo.toml`, through the
//! build script: the generated constants match the files, and the INX is
//! the template xtask packages.

use sample_driver::identity;

fn inx() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sample_driver.inx")).unwrap()
}

#[test]
fn constants_come_from_the_inx_and_manifest() {
    let parsed = dmf_driver_identity::Identity::load(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        "sample_driver",
    )
    .unwrap();
    assert_eq!(identity::SERVICE_NAME, parsed.service_name);
    assert_eq!(
        identity::SERVICE_NAME_C.to_str().unwrap(),
        parsed.service_name
    );
    assert_eq!(identity::HARDWARE_ID, parsed.hardware_id);
    assert_eq!(identity::INTERFACE_GUID.to_u128(), parsed.interface_guid);
    assert_eq!(
        (identity::KMDF_VERSION_MAJOR, identity::KMDF_VERSION_MINOR),
        (parsed.kmdf.major, parsed.kmdf.minor)
    );
    assert_eq!(identity::HARDWARE_ID, r"Root\DMF_SAMPLE_DRIVER");
    assert_eq!(
        sample_driver::ioctl::GUID_DEVINTERFACE_SAMPLE_DRIVER,
        identity::INTERFACE_GUID
    );
}

#[test]
fn the_inx_is_what_xtask_packages() {
    let inx = inx();
    assert!(inx.is_ascii());
    // KMDF 1.33 exists from Windows 11 21H2 / Server 2022 on.
    assert_eq!(identity::MIN_WINDOWS_BUILD, 22000);
    assert!(inx.contains("NT$ARCH$.10.0...22000"));
    assert!(!inx.contains("10.0...16299"));
    assert!(inx.contains("KmdfLibraryVersion = $KMDFVERSION$"));
    assert!(inx.contains("ServiceBinary = %13%\\sample_driver.sys"));
    assert!(inx.contains("KmdfService = %ServiceName%,"));
    assert!(inx.contains("SampleDriver_Device, %HardwareId%"));
}
