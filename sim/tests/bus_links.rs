//! Name lookup on the bus: device and interface links, compared ignoring
//! ASCII case, resolve while the device is present and never after it left
//! (orderly or surprise removal), with many devices on the bus.

use std::sync::Arc;

use dmf_sim::{
    DeviceSpec, NoTargetEvents, RemovalOutcome, Sim, SimConfig, TestsIoctlHandler,
    GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER as GUID,
};
use dmf_wdf::{IoTarget, OpenMode, OpenParams, Platform, ShareAccess, Status};

fn open(sim: &Sim, link: &str) -> dmf_wdf::Result<()> {
    let target = sim.create_io_target()?;
    target.open(
        &OpenParams {
            symbolic_link: link,
            open_mode: OpenMode::READ_WRITE,
            share_access: ShareAccess::READ_WRITE,
        },
        Arc::new(NoTargetEvents),
    )?;
    target.close();
    Ok(())
}

#[test]
fn links_resolve_while_present_ignoring_case() {
    let sim = Sim::new(SimConfig::default());
    let bus = sim.bus();
    let ids: Vec<_> = (0..2_000)
        .map(|i| {
            bus.add_device(
                DeviceSpec::new(format!("dev-{i}"), Arc::new(TestsIoctlHandler::default()))
                    .with_interface(GUID),
            )
            .unwrap()
        })
        .collect();
    for &id in ids.iter().step_by(97) {
        let device_link = bus.device_link(id).unwrap();
        let interface_link = bus.symbolic_link(id, &GUID).unwrap();
        for link in [&device_link, &interface_link] {
            assert_eq!(bus.find_by_link(link), Some(id));
            assert_eq!(bus.find_by_link(&link.to_ascii_lowercase()), Some(id));
            assert_eq!(bus.find_by_link(&link.to_ascii_uppercase()), Some(id));
        }
        assert_eq!(open(&sim, &interface_link.to_ascii_lowercase()), Ok(()));
    }
    assert_eq!(bus.find_by_link("\\??\\SIM#nobody#9999"), None);

    // A disabled interface's link still names the device, but does not open.
    let (a, b) = (ids[1], ids[2]);
    let a_link = bus.symbolic_link(a, &GUID).unwrap();
    bus.disable_interface(a, &GUID).unwrap();
    assert_eq!(bus.find_by_link(&a_link), Some(a));
    assert_eq!(open(&sim, &a_link), Err(Status::OBJECT_NAME_NOT_FOUND));

    // Gone devices resolve to nothing, whichever way they left.
    let b_links = [
        bus.device_link(b).unwrap(),
        bus.symbolic_link(b, &GUID).unwrap(),
    ];
    let a_device_link = bus.device_link(a).unwrap();
    assert_eq!(bus.remove_device(a), Ok(RemovalOutcome::Removed));
    bus.surprise_remove(b).unwrap();
    for link in [&a_link, &a_device_link, &b_links[0], &b_links[1]] {
        assert_eq!(bus.find_by_link(link), None);
        assert_eq!(open(&sim, link), Err(Status::OBJECT_NAME_NOT_FOUND));
    }
    // The others are unaffected.
    assert_eq!(
        bus.find_by_link(&bus.device_link(ids[3]).unwrap()),
        Some(ids[3])
    );
    for &id in &ids[3..] {
        bus.remove_device(id).unwrap();
    }
    assert!(sim.wait_quiescent(std::time::Duration::from_secs(10)));
    assert!(sim.counters().is_clean(), "{}", sim.counters());
}
