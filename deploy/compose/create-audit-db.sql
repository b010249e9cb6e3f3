-- Runs once, when the PostgreSQL volume is created: the audit log's own database (docs/audit.md).
-- proxmox-agent creates its tables itself on first start.
CREATE DATABASE proxmox_audit;
