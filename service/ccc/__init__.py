"""Tencent Cloud Contact Center (CCC) call records: the apps allowed to push them and their credentials
(apps, tokens), what a Data Push request says (push, oauth), the raw log of every record received
(raw_log), what an operator types into the CCC console (console), and the DescribeTelCdr / DescribeIMCdrs
pull through the official SDK (sdk, pacing, pull). Storage-level and HTTP-free: the endpoints are in
service/http/ccc.py."""
