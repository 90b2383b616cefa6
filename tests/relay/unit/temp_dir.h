// The store suite's test helpers (a private temporary directory removed at the end of the test, file utilities).
#pragma once

#include "../../store/temp_dir.h"

namespace relaytest = testutil;
