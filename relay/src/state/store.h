// The connection stores and the store key, in one include: the interface (state/connection_store.h), the file
// store (state/file_store.h), the sealed record format (state/sealed_record.h) and key loading (state/store_keys.h).
// The Redis store is state/redis_store.h.
#pragma once

#include "state/connection.h"
#include "state/connection_store.h"
#include "state/file_store.h"
#include "state/sealed_record.h"
#include "state/store_keys.h"
