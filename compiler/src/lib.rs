//! meshc: compiler and linter for Istio traffic policy repositories.
