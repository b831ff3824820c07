//! Non-streaming methods (placeholder until dmf-request-target lands).

use alloc::sync::Arc;

use dmf_wdf::{Platform, Result};

pub(crate) struct Single<P: Platform> {
    _p: core::marker::PhantomData<P>,
}

impl<P: Platform> Single<P> {
    pub(crate) fn new(_platform: &P, _passive: bool) -> Result<Self> {
        Ok(Single {
            _p: core::marker::PhantomData,
        })
    }
    pub(crate) fn io_target_set(&self, _t: Arc<P::IoTarget>) {}
    pub(crate) fn io_target_clear(&self) {}
    pub(crate) fn close(&self) {}
}
