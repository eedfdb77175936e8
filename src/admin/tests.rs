//! Admin operations under storage faults: whatever step fails, no key the admin saw working has
//! silently stopped, no revoked key works again, and no usable key is missing from the list.
