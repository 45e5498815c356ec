"""The audit trail: who did what to which key, member or account, when and from where."""
