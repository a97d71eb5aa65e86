"""What every HTTP answer shares: the error shape, headers, health, metrics, the dashboard's and the shim's
files, request deadlines, and the worker's state as endpoints reach it."""
