"""Development-only tools: local stand-ins for RunningHub and Tencent COS/CI. No app imports this package.

runninghub_sim/state.py     simulator settings, fault modes (listed there), tasks, counters, webhooks
runninghub_sim/wire.py      RunningHub paths, codes, `{code, msg, data}` answers, multipart parser
runninghub_sim/images.py    result PNGs derived from the upload, the LoadImage decode check
runninghub_sim/server.py    HTTP handler, `SimulatorServer`, `python -m devtools.runninghub_sim`
cos_server/state.py         buckets, objects, ACLs, moderation verdicts, fault modes (listed there)
cos_server/signature.py     the COS HMAC-SHA1 signature check, its rules in the docstring
cos_server/ci.py            Cloud Infinite: Pic-Operations processing on upload, image moderation
cos_server/wire.py          the parsed request, `CosError`, XML answers and errors
cos_server/server.py        HTTP handler, `make_server`, `python -m devtools.cos_server`
testing.py, cos_testing.py  start either server inside a test process (conftest.py's fixtures use them)
"""
