//! Conversion between core/v1 Event and events.k8s.io/v1 Event, which share one storage.
