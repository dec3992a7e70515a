import json
exec(open("gen_http.py").read().split("cfg={")[0])
EXTRA = ("[%REQ(X-EMPTY)%][%CUSTOM_FLAGS%][%LOCAL_REPLY_BODY%][%ACCESS_LOG_TYPE%][%UPSTREAM_CONNECTION_ID%][%UPSTREAM_WIRE_BYTES_SENT%]"
 "[%DOWNSTREAM_WIRE_BYTES_RECEIVED%][%REQUEST_HEADERS_BYTES%][%RESPONSE_HEADERS_BYTES%][%GRPC_STATUS%][%STREAM_ID%][%ENVIRONMENT(HOME)%][%ENVIRONMENT(NOPE_X):2%]"
 "[%ENVIRONMENT(HOME):2%][%FILTER_CHAIN_NAME%][%UPSTREAM_HOST_NAME%][%UPSTREAM_CLUSTER_RAW%][%START_TIME_LOCAL%][%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%]"
 "[%UPSTREAM_REMOTE_PORT%][%BYTES_RETRANSMITTED%][%TRACE_ID%][%PATH%][%QUERY_PARAM(q)%][%UPSTREAM_REQUEST_ATTEMPT_COUNT%][%REQUEST_DURATION%][%RESPONSE_DURATION%]"
 "[%VIRTUAL_CLUSTER_NAME%][%CONNECTION_TERMINATION_DETAILS%][%DOWNSTREAM_TLS_VERSION%][%RESPONSE_CODE_DETAILS(ALLOW_WHITESPACES)%][%UPSTREAM_LOCAL_CLOSE_REASON%]\n")
OMIT = {"emptymap": {}, "emptylist": [], "listnulls": [None, "%REQ(X-NOPE)%"], "litnull": None, "nestedempty": {"a": {}}, "env": "%ENVIRONMENT(NOPE_X)%", "x": "%REQ(:METHOD)%"}
OMIT_ALL = {"a": "%REQ(X-NOPE)%", "b": {"c": "%REQ(X-NOPE)%"}}
PLAIN = {"k\"ey": "v", "\u00dc": 1, "Zz": 2, "a": {}, "b": [], "env": "%ENVIRONMENT(NOPE_X)%", "uid": "%UNIQUE_ID%", "ua": "%REQ(USER-AGENT)%", "ct": "%RESP(CONTENT-TYPE)%",
         "rhb": "%REQUEST_HEADERS_BYTES%", "ctrl": "%REQ(X-CTRL)%", "empty": "", "pct_only": "%%", "lat": "caf\u00e9\n", "cfl": "%CUSTOM_FLAGS%", "lrb": "%LOCAL_REPLY_BODY%", "alt": "%ACCESS_LOG_TYPE%"}
logs_http = [flog("e_http_truth.log", jsonf=TRUTH), flog("e_http_text.log", EXTRA), flog("e_http_omit.log", jsonf=OMIT, omit=True), flog("e_http_omit_all.log", jsonf=OMIT_ALL, omit=True), flog("e_http_plain.log", jsonf=PLAIN)]
logs_tcp = [flog("e_tcp_text.log", EXTRA), flog("e_tcp_plain.log", jsonf=PLAIN)]
src = open("http.json").read()
cfg = json.loads(src)
hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
hcm["access_log"] = logs_http
hcm["generate_request_id"] = True
cfg["static_resources"]["listeners"][1]["filter_chains"][0]["filters"][0]["typed_config"]["access_log"] = logs_tcp
cfg["static_resources"]["listeners"][2]["filter_chains"][0]["filters"][0]["typed_config"]["access_log"] = []
json.dump(cfg, open("edge.json", "w"), indent=1)
