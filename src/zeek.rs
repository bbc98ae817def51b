//! Zeek-compatible conn_state and history. (stub: being written)

use crate::model::ZeekView;
use crate::segment::Segment;

#[derive(Clone, Debug, Default)]
pub struct ZeekTracker {}

impl ZeekTracker {
    pub fn new(_flipped: bool) -> Self {
        ZeekTracker {}
    }
    pub fn observe(&mut self, _seg: &Segment, _from_orig: bool) {}
    pub fn view(&self) -> ZeekView {
        ZeekView::default()
    }
}
