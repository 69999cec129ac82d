//! The meshc routing-table artifact: format, checked reader and executor.
