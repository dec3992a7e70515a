"""pymongo workload for integration/tests/mongo_*.rs: python workload.py <port> <scenario> [compressors].

Prints one JSON line with what the driver saw, so the test can check replies as well as stats.
"""
import json, sys

import pymongo
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure


def client(port, compressors=None):
    # One application connection; the monitor polls rarely so its `hello`s are few.
    extra = {"compressors": compressors} if compressors else {}
    return pymongo.MongoClient("127.0.0.1", port, directConnection=True, maxPoolSize=1,
                               heartbeatFrequencyMS=60000, serverSelectionTimeoutMS=10000,
                               retryWrites=False, retryReads=False, **extra)


def crud(port, compressors=None):
    c = client(port, compressors)
    coll = c.shop.items
    out = {}
    coll.insert_one({"_id": 1, "name": "apple", "qty": 5})
    r = coll.insert_many([{"_id": i, "name": f"item{i}", "qty": i} for i in range(2, 8)])
    out["inserted"] = len(r.inserted_ids)
    out["by_id"] = coll.find_one({"_id": 1})["name"]
    out["by_ids"] = len(list(coll.find({"_id": {"$in": [2, 3, 4]}})))
    out["by_name"] = len(list(coll.find({"name": "item5"})))
    out["updated"] = coll.update_many({"qty": {"$gte": 6}}, {"$set": {"big": True}}).modified_count
    out["deleted"] = coll.delete_one({"_id": 7}).deleted_count
    out["agg"] = len(list(coll.aggregate([{"$match": {"qty": {"$lte": 3}}}])))
    # 6 documents in batches of 2: find + 2 getMores.
    out["cursor"] = len(list(coll.find({}, batch_size=2)))
    try:
        coll.insert_one({"_id": 1})
    except DuplicateKeyError:
        out["dup"] = True
    # nx-27017 answers an unknown aggregation stage with ok: 0 (a server-side error).
    try:
        list(coll.aggregate([{"$bogus": 1}]))
    except OperationFailure:
        out["server_error"] = True
    out["count"] = coll.count_documents({"_id": 1})
    c.close()
    print(json.dumps(out))


if __name__ == "__main__":
    {"crud": crud}[sys.argv[2]](int(sys.argv[1]), *sys.argv[3:])
