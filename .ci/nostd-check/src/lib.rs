//! Links every `no_std` DMF layer without `std` (see Cargo.toml).
#![no_std]

extern crate dmf_buffer_pool;
extern crate dmf_continuous_request_target;
extern crate dmf_device_interface_multiple_target;
extern crate dmf_request_target;
extern crate dmf_wdf;

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
