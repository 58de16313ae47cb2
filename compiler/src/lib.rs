//! catrust
