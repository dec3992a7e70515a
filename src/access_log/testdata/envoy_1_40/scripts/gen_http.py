import json
OUT="/work/scratch/accesslog/envoy_lab/out/"
def flog(name, fmt=None, jsonf=None, omit=False):
    tc={"@type":"type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog","path":OUT+name}
    lf={}
    if fmt is not None: lf["text_format_source"]={"inline_string":fmt}
    if jsonf is not None: lf["json_format"]=jsonf
    if omit: lf["omit_empty_values"]=True
    if lf: tc["log_format"]=lf
    return {"name":"envoy.access_loggers.file","typed_config":tc}

TIMES = "|".join([
 "%START_TIME(%s%9f)%","%START_TIME%","%START_TIME()%","%START_TIME(%s)%","%START_TIME(%s.%3f)%","%START_TIME(%s.%6f)%","%START_TIME(%s.%9f)%",
 "%START_TIME(%f)%","%START_TIME(%1f)%","%START_TIME(%5f)%","%START_TIME(%*f)%","%START_TIME(%Y/%m/%dT%H:%M:%S%z)%",
 "%START_TIME(%a %A %b %B %c)%","%START_TIME(%d %e %j %y %C %G %g %V %U %W %u %w)%","%START_TIME(%D %F %T %R %r %p %I %l %k)%",
 "%START_TIME(%x %X %h %Z %Ez %E*z %E3S %E6S %E*S %E3f %E*f %E4Y)%","%START_TIME(%%)%","%START_TIME(lit%%s)%","%START_TIME(%t|%q|%P|%+|%Q)%",
 "%START_TIME(%H:%M:%S.%f)%","%START_TIME(%3f%3f)%","%START_TIME(%Ex %EX %Oy %OH)%","%START_TIME(%-d %_d %0e %^a %#b)%","%START_TIME(%5Y %10s)%",
 "%START_TIME(%)%","%START_TIME(a%)%","%START_TIME(%E)%","%START_TIME(%O)%","%START_TIME(%%%)%",
]) + "\n"

HTTP_TEXT = ("ns=%START_TIME(%s%9f)% p=%PROTOCOL% rc=%RESPONSE_CODE% rcd=%RESPONSE_CODE_DETAILS% f=%RESPONSE_FLAGS% fl=%RESPONSE_FLAGS_LONG% "
  "br=%BYTES_RECEIVED% bs=%BYTES_SENT% d=%DURATION% uh=%UPSTREAM_HOST% uc=%UPSTREAM_CLUSTER% ula=%UPSTREAM_LOCAL_ADDRESS% utfr=%UPSTREAM_TRANSPORT_FAILURE_REASON% "
  "dra=%DOWNSTREAM_REMOTE_ADDRESS% drawp=%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% dla=%DOWNSTREAM_LOCAL_ADDRESS% dlawp=%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT% "
  "dlp=%DOWNSTREAM_LOCAL_PORT% cid=%CONNECTION_ID% rn=%ROUTE_NAME% sni=%REQUESTED_SERVER_NAME% m=%REQ(:METHOD)% path=%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% "
  "t3=%REQ(:PATH):3% t0=%REQ(:PATH):0% t99=%REQ(:PATH):99% fb=%REQ(X-NOPE?USER-AGENT)% fbt=%REQ(X-NOPE?USER-AGENT):4% first=%REQ(USER-AGENT?X-NOPE)% "
  "dup=%REQ(X-DUP)% auth=%REQ(:AUTHORITY)% xff=%REQ(X-FORWARDED-FOR)% rid=%REQ(X-REQUEST-ID)% "
  "resp=%RESP(X-RESP)% respt=%RESP(X-RESP):5% ct=%RESP(CONTENT-TYPE)% ust=%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% tr=%TRAILER(X-TR)% rq=%REQUEST_HEADER(USER-AGENT)% rs=%RESPONSE_HEADER(X-RESP)% "
  "pct=100%% host=%HOSTNAME%\n")

HTTP_JSON = {
  "ns":"%START_TIME(%s%9f)%", "protocol":"%PROTOCOL%", "code":"%RESPONSE_CODE%", "details":"%RESPONSE_CODE_DETAILS%", "flags":"%RESPONSE_FLAGS%",
  "br":"%BYTES_RECEIVED%", "bs":"%BYTES_SENT%", "dur":"%DURATION%", "uh":"%UPSTREAM_HOST%", "ula":"%UPSTREAM_LOCAL_ADDRESS%","cluster":"%UPSTREAM_CLUSTER%", "route":"%ROUTE_NAME%",
  "dra":"%DOWNSTREAM_REMOTE_ADDRESS%", "dlp":"%DOWNSTREAM_LOCAL_PORT%", "drp":"%DOWNSTREAM_REMOTE_PORT%", "cid":"%CONNECTION_ID%",
  "method":"%REQ(:METHOD)%", "path":"%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", "ua":"%REQ(USER-AGENT)%", "ua3":"%REQ(USER-AGENT):3%", "xff":"%REQ(X-FORWARDED-FOR)%",
  "rid":"%REQ(X-REQUEST-ID)%", "auth":"%REQ(:AUTHORITY)%", "resp":"%RESP(X-RESP)%", "ust":"%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%", "esc":"%REQ(X-ESC)%",
  "mixed":"%REQ(:METHOD)% %REQ(X-NOPE)% %RESPONSE_CODE%", "lit":"just text", "pct":"100%%", "tr":"%TRAILER(X-TR)%",
  "nested":{"inner":{"code":"%RESPONSE_CODE%","none":"%REQ(X-NOPE)%"},"b":"%BYTES_SENT%"}, "st":"%START_TIME%",
}
HTTP_JSON_OMIT = {
  "ns":"%START_TIME(%s%9f)%", "protocol":"%PROTOCOL%", "code":"%RESPONSE_CODE%", "none":"%REQ(X-NOPE)%", "mixed":"a%REQ(X-NOPE)%b",
  "allnone":{"x":"%REQ(X-NOPE)%","y":{"z":"%REQ(X-NOPE2)%"}}, "some":{"x":"%REQ(X-NOPE)%","m":"%REQ(:METHOD)%","y":{"z":"%REQ(X-NOPE2)%"}},
  "list":["%REQ(X-NOPE)%","%REQ(:METHOD)%",{"q":"%REQ(X-NOPE)%"}], "lit":"x", "zlast":"%REQ(X-NOPE)%", "emptyval":"%REQ(X-EMPTY)%",
}


TRUTH = {"ns":"%START_TIME(%s%9f)%","protocol":"%PROTOCOL%","code":"%RESPONSE_CODE%","details":"%RESPONSE_CODE_DETAILS(ALLOW_WHITESPACES)%",
  "flags":"%RESPONSE_FLAGS%","br":"%BYTES_RECEIVED%","bs":"%BYTES_SENT%","dur":"%DURATION%","uh":"%UPSTREAM_HOST%","cluster":"%UPSTREAM_CLUSTER%",
  "ula":"%UPSTREAM_LOCAL_ADDRESS%","utfr":"%UPSTREAM_TRANSPORT_FAILURE_REASON%","dra":"%DOWNSTREAM_REMOTE_ADDRESS%","dla":"%DOWNSTREAM_LOCAL_ADDRESS%",
  "cid":"%CONNECTION_ID%","route":"%ROUTE_NAME%","sni":"%REQUESTED_SERVER_NAME%",
  "req":{":method":"%REQ(:METHOD)%",":path":"%REQ(:PATH)%",":authority":"%REQ(:AUTHORITY)%","x-envoy-original-path":"%REQ(X-ENVOY-ORIGINAL-PATH)%",
         "user-agent":"%REQ(USER-AGENT)%","x-forwarded-for":"%REQ(X-FORWARDED-FOR)%","x-request-id":"%REQ(X-REQUEST-ID)%","x-dup":"%REQ(X-DUP)%",
         "x-empty":"%REQ(X-EMPTY)%","x-esc":"%REQ(X-ESC)%","content-type":"%REQ(CONTENT-TYPE)%"},
  "resp":{"x-resp":"%RESP(X-RESP)%","content-type":"%RESP(CONTENT-TYPE)%","x-envoy-upstream-service-time":"%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%"},
  "trailers":{"x-tr":"%TRAILER(X-TR)%"}}

def cluster(name, port=None):
    c={"name":name,"connect_timeout":"1s","type":"STATIC","load_assignment":{"cluster_name":name,"endpoints":[]}}
    if port: c["load_assignment"]["endpoints"]=[{"lb_endpoints":[{"endpoint":{"address":{"socket_address":{"address":"127.0.0.1","port_value":port}}}}]}]
    return c

TCP_TEXT = ("ns=%START_TIME(%s%9f)% p=%PROTOCOL% rc=%RESPONSE_CODE% rcd=%RESPONSE_CODE_DETAILS% f=%RESPONSE_FLAGS% br=%BYTES_RECEIVED% bs=%BYTES_SENT% d=%DURATION% "
  "uh=%UPSTREAM_HOST% uc=%UPSTREAM_CLUSTER% ula=%UPSTREAM_LOCAL_ADDRESS% ulawp=%UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT% ulp=%UPSTREAM_LOCAL_PORT% ura=%UPSTREAM_REMOTE_ADDRESS% utfr=%UPSTREAM_TRANSPORT_FAILURE_REASON% "
  "dra=%DOWNSTREAM_REMOTE_ADDRESS% drawp=%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% drp=%DOWNSTREAM_REMOTE_PORT% dla=%DOWNSTREAM_LOCAL_ADDRESS% dlp=%DOWNSTREAM_LOCAL_PORT% "
  "cid=%CONNECTION_ID% rn=%ROUTE_NAME% sni=%REQUESTED_SERVER_NAME% req=%REQ(:METHOD)% up=%UPSTREAM_PROTOCOL%\n")
TCP_JSON = {"ns":"%START_TIME(%s%9f)%","protocol":"%PROTOCOL%","code":"%RESPONSE_CODE%","flags":"%RESPONSE_FLAGS%","br":"%BYTES_RECEIVED%","bs":"%BYTES_SENT%",
  "dur":"%DURATION%","uh":"%UPSTREAM_HOST%","ula":"%UPSTREAM_LOCAL_ADDRESS%","ulp":"%UPSTREAM_LOCAL_PORT%","cluster":"%UPSTREAM_CLUSTER%","dra":"%DOWNSTREAM_REMOTE_ADDRESS%",
  "dla":"%DOWNSTREAM_LOCAL_ADDRESS%","cid":"%CONNECTION_ID%","num":42,"flt":1.5,"neg":-3,"big":1e20,"small":0.001,"t":True,"f":False,"n":None,"list":[1,"a",None]}

cfg={
 "admin":{"address":{"socket_address":{"address":"127.0.0.1","port_value":19100}}},
 "static_resources":{
  "listeners":[
   {"name":"http","address":{"socket_address":{"address":"127.0.0.1","port_value":19103}},
    "filter_chains":[{"filters":[{"name":"envoy.filters.network.http_connection_manager","typed_config":{
      "@type":"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
      "stat_prefix":"ingress",
      "access_log":[flog("http_truth.log", jsonf=TRUTH), flog("http_default.log"), flog("http_text.log", HTTP_TEXT), flog("http_json.log", jsonf=HTTP_JSON), flog("http_json_omit.log", jsonf=HTTP_JSON_OMIT, omit=True), flog("http_times.log", TIMES)],
      "route_config":{"name":"rc","virtual_hosts":[{"name":"vh","domains":["*"],"routes":[
         {"name":"r_up","match":{"prefix":"/up"},"route":{"cluster":"up_http"}},
         {"name":"r_direct","match":{"prefix":"/direct"},"direct_response":{"status":200,"body":{"inline_string":"hi"}}},
         {"name":"r_empty","match":{"prefix":"/empty"},"route":{"cluster":"empty"}},
         {"name":"r_refused","match":{"prefix":"/refused"},"route":{"cluster":"refused","retry_policy":{"retry_on":"connect-failure","num_retries":1}}},
      ]}]},
      "http_filters":[
        {"name":"envoy.filters.http.fault","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
          "delay":{"header_delay":{},"percentage":{"numerator":100,"denominator":"HUNDRED"}}}},
        {"name":"envoy.filters.http.router","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]
    }}]}]},
   {"name":"tcp_echo","address":{"socket_address":{"address":"127.0.0.1","port_value":19102}},
    "filter_chains":[{"filters":[{"name":"envoy.filters.network.tcp_proxy","typed_config":{
      "@type":"type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy","stat_prefix":"tcp_echo","cluster":"echo",
      "access_log":[flog("tcp_truth.log", jsonf=TRUTH), flog("tcp_default.log"), flog("tcp_text.log", TCP_TEXT), flog("tcp_json.log", jsonf=TCP_JSON), flog("tcp_times.log", TIMES)]}}]}]},
   {"name":"tcp_refused","address":{"socket_address":{"address":"127.0.0.1","port_value":19101}},
    "filter_chains":[{"filters":[{"name":"envoy.filters.network.tcp_proxy","typed_config":{
      "@type":"type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy","stat_prefix":"tcp_refused","cluster":"refused",
      "access_log":[flog("tcpr_truth.log", jsonf=TRUTH), flog("tcpr_default.log"), flog("tcpr_text.log", TCP_TEXT), flog("tcpr_json.log", jsonf=TCP_JSON)]}}]}]},
  ],
  "clusters":[cluster("up_http",19191), cluster("echo",19190), cluster("refused",19199), cluster("empty")]
 }}
json.dump(cfg, open("http.json","w"), indent=1)
