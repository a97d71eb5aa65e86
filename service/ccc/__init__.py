"""Tencent Cloud Contact Center (CCC) call records: the apps allowed to push them and their credentials
(apps, tokens), what a Data Push request says (push, oauth), the raw log of every record received
(raw_log), and what an operator types into the CCC console (console). Storage-level and HTTP-free: the
endpoints are in service/http/ccc.py."""
