"""`nextmavens doctor`: a read-only smoke check of the host (shared services, each project's services, the edge,
certificates, image pins, memory limits). Pure checks in `checks`, observation in `observe`, host settings in
`hostfile`, the command in `cli`."""
