//! Which call owns which channel and bridge, so each ARI event reaches its call's task.
//!
//! Lookups take a short lock on a map and never await; all the work happens in the calls'
//! own tasks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use crate::call::Input;

#[derive(Debug, Default)]
struct Maps {
    /// call id → its task's mailbox.
    calls: HashMap<String, mpsc::UnboundedSender<Input>>,
    /// channel id → call id.
    channels: HashMap<String, String>,
    /// bridge id → call id.
    bridges: HashMap<String, String>,
}

/// The live calls and their channels and bridges.
#[derive(Debug, Clone, Default)]
pub struct Registry(Arc<Mutex<Maps>>);

impl Registry {
    fn maps(&self) -> MutexGuard<'_, Maps> {
        // A poisoned map is still consistent: every update is a single insert or remove.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a call and its first channel; false when the call or the channel is known already.
    pub fn add_call(&self, call_id: &str, channel_id: &str, inbox: mpsc::UnboundedSender<Input>) -> bool {
        let mut maps = self.maps();
        if maps.calls.contains_key(call_id) || maps.channels.contains_key(channel_id) {
            return false;
        }
        maps.calls.insert(call_id.to_owned(), inbox);
        maps.channels.insert(channel_id.to_owned(), call_id.to_owned());
        true
    }

    pub fn add_channel(&self, channel_id: &str, call_id: &str) {
        self.maps().channels.insert(channel_id.to_owned(), call_id.to_owned());
    }

    pub fn add_bridge(&self, bridge_id: &str, call_id: &str) {
        self.maps().bridges.insert(bridge_id.to_owned(), call_id.to_owned());
    }

    /// Adds `channel_id` to a running call and returns its mailbox, in one step, so a call that
    /// is closing never gains a channel.
    pub fn join(&self, call_id: &str, channel_id: &str) -> Option<mpsc::UnboundedSender<Input>> {
        let mut maps = self.maps();
        let inbox = maps.calls.get(call_id)?.clone();
        maps.channels.insert(channel_id.to_owned(), call_id.to_owned());
        Some(inbox)
    }

    /// Stops routing commands and new parties to a call that is ending; its channels and
    /// bridges stay known until [`Registry::remove_call`], so they are not taken for leftovers.
    pub fn close_call(&self, call_id: &str) {
        self.maps().calls.remove(call_id);
    }

    /// Forgets a call with every channel and bridge it owned.
    pub fn remove_call(&self, call_id: &str) {
        let mut maps = self.maps();
        maps.calls.remove(call_id);
        maps.channels.retain(|_, owner| owner != call_id);
        maps.bridges.retain(|_, owner| owner != call_id);
    }

    /// The mailbox of the call that owns `channel_id`.
    pub fn by_channel(&self, channel_id: &str) -> Option<mpsc::UnboundedSender<Input>> {
        let maps = self.maps();
        let call = maps.channels.get(channel_id)?;
        maps.calls.get(call).cloned()
    }

    pub fn by_call(&self, call_id: &str) -> Option<mpsc::UnboundedSender<Input>> {
        self.maps().calls.get(call_id).cloned()
    }

    pub fn knows_channel(&self, channel_id: &str) -> bool {
        self.maps().channels.contains_key(channel_id)
    }

    pub fn knows_bridge(&self, bridge_id: &str) -> bool {
        self.maps().bridges.contains_key(bridge_id)
    }

    /// Every call's mailbox.
    pub fn calls(&self) -> Vec<mpsc::UnboundedSender<Input>> {
        self.maps().calls.values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.maps().calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
