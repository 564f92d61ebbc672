"""kubectl's printers as pure functions over Kubernetes JSON: tables, durations, the cell
helpers describe shares. Upstream compiles them into kube-apiserver (server-side printing,
pkg/printers/internalversion); here too the API server builds its meta.k8s.io Tables from
these columns (netsim.api.tables), and `netsim get|describe` print with the same code."""
