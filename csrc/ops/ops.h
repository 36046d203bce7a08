#pragma once
// Every op deepcore has, by family. Each family's forward dispatch and derivative live
// together in csrc/ops/<family>.cpp; csrc/ops/registry.cpp lists them for tests and docs.
#include "ops/conv.h"
#include "ops/creation.h"
#include "ops/elementwise.h"
#include "ops/index.h"
#include "ops/linalg.h"
#include "ops/nn.h"
#include "ops/optim.h"
#include "ops/norm2d.h"
#include "ops/pool.h"
#include "ops/reduce.h"
#include "ops/shape.h"
#include "ops/sort.h"
