#pragma once
// Every op deepcore has, by family. Each family's forward dispatch and derivative live
// together in csrc/ops/<family>.cpp; csrc/ops/registry.cpp lists them for tests and docs.
#include "ops/attention.h"
#include "ops/conv.h"
#include "ops/creation.h"
#include "ops/dropout.h"
#include "ops/elementwise.h"
#include "ops/index.h"
#include "ops/linalg.h"
#include "ops/loss.h"
#include "ops/norm.h"
#include "ops/optim.h"
#include "ops/pool.h"
#include "ops/reduce.h"
#include "ops/rnn.h"
#include "ops/shape.h"
#include "ops/softmax.h"
#include "ops/sort.h"
