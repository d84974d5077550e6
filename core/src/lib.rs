//! Kith core.
