//! The per-target states reported to the client
//! (DMF `DeviceInterfaceMultipleTarget_StateType`).

/// The state a target is transitioning to, as reported to
/// [`DimtClient::on_state_change`](crate::DimtClient::on_state_change).
///
/// The discriminants are DMF's. `Invalid` and `Maximum` are the C enum's
/// sentinels: they exist for parity and conversion, and are never reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum TargetStateType {
    /// Sentinel (`DeviceInterfaceTarget_StateType_Invalid`); never reported.
    Invalid = 0,
    /// The target was opened. Methods work from this callback on. Returning a
    /// failure from the callback vetoes the open: the target is closed again
    /// and no `Close` follows.
    Open = 1,
    /// The device is being queried for removal. Returning a failure vetoes
    /// the removal and the target stays open. Otherwise, when the callback
    /// returns, the target's I/O is cancelled and methods fail with
    /// `STATUS_INVALID_DEVICE_STATE` until `QueryRemoveCancelled`.
    QueryRemove = 2,
    /// The removal was cancelled; the target was reopened and works again.
    QueryRemoveCancelled = 3,
    /// The device is gone (after `QueryRemove`, or a surprise removal).
    QueryRemoveComplete = 4,
    /// The target is closing. Methods still work during this callback; when
    /// it returns the target's I/O is cancelled and its handle becomes stale.
    Close = 5,
    /// Sentinel (`DeviceInterfaceTarget_StateType_Maximum`); never reported.
    Maximum = 6,
}

impl TargetStateType {
    /// Whether the client's return value is honoured as a veto for this state.
    pub const fn can_veto(self) -> bool {
        matches!(self, TargetStateType::Open | TargetStateType::QueryRemove)
    }
}

impl TryFrom<u32> for TargetStateType {
    type Error = u32;

    fn try_from(value: u32) -> Result<Self, u32> {
        Ok(match value {
            0 => TargetStateType::Invalid,
            1 => TargetStateType::Open,
            2 => TargetStateType::QueryRemove,
            3 => TargetStateType::QueryRemoveCancelled,
            4 => TargetStateType::QueryRemoveComplete,
            5 => TargetStateType::Close,
            6 => TargetStateType::Maximum,
            other => return Err(other),
        })
    }
}
