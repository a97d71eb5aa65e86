"""What every HTTP answer shares: the error shape, headers, health, metrics, the dashboard's and the shim's
files, request deadlines, and the worker's state as endpoints reach it; and the CCC receiver's endpoints
(ccc.py: Data Push and its token endpoint, over service/ccc/), which answer in CCC's and OAuth2's shapes."""
