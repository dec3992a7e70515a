import json
exec(open("gen_http.py").read().split("cfg={")[0])
V6 = "%DOWNSTREAM_REMOTE_ADDRESS%|%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%|%DOWNSTREAM_REMOTE_PORT%|%DOWNSTREAM_LOCAL_ADDRESS%|%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%|%UPSTREAM_HOST%|%START_TIME(%e|%k|%l|%-j|%_m|%U|%10A|%-10a|%010b|%^B|%#p|%#Z|%Ey|%Od|%Ed|%:z|%::z|%:::z|%E0S|%E10S|%E12f|%Ez)%\n"
cfg = {"admin":{"address":{"socket_address":{"address":"127.0.0.1","port_value":19100}}},
 "static_resources":{"listeners":[{"name":"v6","address":{"socket_address":{"address":"::1","port_value":19104}},
   "filter_chains":[{"filters":[{"name":"envoy.filters.network.tcp_proxy","typed_config":{
     "@type":"type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy","stat_prefix":"v6","cluster":"echo6",
     "access_log":[flog("v6_text.log", V6), flog("v6_truth.log", jsonf=TRUTH)]}}]}]}],
  "clusters":[{"name":"echo6","connect_timeout":"1s","type":"STATIC","load_assignment":{"cluster_name":"echo6","endpoints":[{"lb_endpoints":[{"endpoint":{"address":{"socket_address":{"address":"::1","port_value":19189}}}}]}]}}]}}
json.dump(cfg, open("v6.json","w"))
