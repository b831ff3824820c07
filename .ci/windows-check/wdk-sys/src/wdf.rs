//! The WDF function table's size, as the real crate's `wdf` module exposes
//! it to `wdk-macros`.

#[doc(hidden)]
pub mod __private {
    /// The number of entries in `WdfFunctions` (KMDF 1.25+: the loader's
    /// `WdfFunctionCount`).
    #[must_use]
    pub fn get_wdf_function_count() -> usize {
        // SAFETY: the loader writes `WdfFunctionCount` before `DriverEntry`
        // and never again.
        (unsafe { crate::WdfFunctionCount }) as usize
    }
}
