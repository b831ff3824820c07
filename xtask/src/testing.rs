//! Fixtures for xtask's own tests: a tiny but valid driver image.

use crate::pe;

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// A 1 KiB PE32+ native-subsystem image (what a `.sys` looks like to
/// signing tools): DOS header, PE header, optional header with a correct
/// `CheckSum` and an empty certificate-table entry, and one `.text` section
/// whose content depends on `seed` (so different seeds hash differently).
pub fn minimal_driver_pe(machine: u16, seed: u8) -> Vec<u8> {
    const PE: usize = 0x80;
    const OPT: usize = PE + 24;
    const SECTIONS: usize = OPT + 240;
    let mut b = vec![0u8; 0x400];
    b[0..2].copy_from_slice(b"MZ");
    put32(&mut b, 0x3C, PE as u32);
    b[PE..PE + 4].copy_from_slice(b"PE\0\0");
    put16(&mut b, PE + 4, machine);
    put16(&mut b, PE + 6, 1); // NumberOfSections
    put16(&mut b, PE + 20, 240); // SizeOfOptionalHeader
    put16(&mut b, PE + 22, 0x0022); // EXECUTABLE_IMAGE | LARGE_ADDRESS_AWARE

    put16(&mut b, OPT, 0x20B); // PE32+
    b[OPT + 2] = 14; // linker version
    put32(&mut b, OPT + 4, 0x200); // SizeOfCode
    put32(&mut b, OPT + 16, 0x1000); // AddressOfEntryPoint
    put32(&mut b, OPT + 20, 0x1000); // BaseOfCode
    put64(&mut b, OPT + 24, 0x1_4000_0000); // ImageBase
    put32(&mut b, OPT + 32, 0x1000); // SectionAlignment
    put32(&mut b, OPT + 36, 0x200); // FileAlignment
    put16(&mut b, OPT + 40, 10); // OS version 10.0
    put16(&mut b, OPT + 48, 10); // subsystem version 10.0
    put32(&mut b, OPT + 56, 0x2000); // SizeOfImage
    put32(&mut b, OPT + 60, 0x200); // SizeOfHeaders
    put16(&mut b, OPT + 68, pe::SUBSYSTEM_NATIVE);
    put16(&mut b, OPT + 70, 0x0160); // HIGH_ENTROPY_VA | DYNAMIC_BASE | NX_COMPAT
    put64(&mut b, OPT + 72, 0x40000);
    put64(&mut b, OPT + 80, 0x1000);
    put64(&mut b, OPT + 88, 0x10_0000);
    put64(&mut b, OPT + 96, 0x1000);
    put32(&mut b, OPT + 108, 16); // NumberOfRvaAndSizes

    b[SECTIONS..SECTIONS + 5].copy_from_slice(b".text");
    put32(&mut b, SECTIONS + 8, 0x10); // VirtualSize
    put32(&mut b, SECTIONS + 12, 0x1000); // VirtualAddress
    put32(&mut b, SECTIONS + 16, 0x200); // SizeOfRawData
    put32(&mut b, SECTIONS + 20, 0x200); // PointerToRawData
    put32(&mut b, SECTIONS + 36, 0x6000_0020); // CODE | EXECUTE | READ

    b[0x200] = 0x31; // xor eax, eax
    b[0x201] = 0xC0;
    b[0x202] = 0xC3; // ret
    for (i, byte) in b[0x203..0x210].iter_mut().enumerate() {
        *byte = seed.wrapping_add(i as u8);
    }
    let sum = pe::checksum(&b, OPT + 64);
    put32(&mut b, OPT + 64, sum);
    b
}
