/* Replies in Lua, as Redis' own Lua scripting maps them:
 *   bulk and status replies   strings ("OK", "PONG", "QUEUED" stay strings)
 *   integers                  numbers
 *   arrays                    tables 1..n, nested
 *   nil                       nil at the top; false inside an array
 *   error                     nil, "ERR ..." (the server's text) at the top;
 *                             {err = "ERR ..."} inside an array
 * call(cmd, ...)                -> reply | nil, err
 * hgetall(key)                  -> {field = value, ...} | nil, err
 *   HGETALL's answer keyed by field ({} for a missing key), without the
 *   {field, value, ...} array call gives.
 * pipeline{{cmd, ...}, ...}     -> results, errors | nil, err
 *   results[i]: the i-th reply (false for a nil or an error reply); errors:
 *   nil when no reply was an error, else {[i] = "ERR ..."}. A transport error
 *   (no answer for some command) gives nil, err for the whole pipeline.
 * script(source)                -> object; object:call(keys, args) -> as call
 * connected()                   -> boolean
 * Transport errors are redis.h's: "redis: not connected", "redis: connection
 * lost", "closed"; the thread's deadline gives nil, "timeout". */
#include "lua_redis.h"

#include <ctype.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "env.h"
#include "redis.h"
#include "sched.h"

#define SCRIPT_MT "shield.redis.script"

typedef struct lreq lreq_t;

/* How the replies of a request are given to Lua. */
typedef enum { REQ_CALL, REQ_HASH, REQ_PIPELINE } req_kind_t;

typedef struct {
  lreq_t *req;
  int index;
} lslot_t;

/* One call or pipeline parked on the scheduler. */
struct lreq {
  shr_wait_t wait;
  int n;               /* commands */
  int left;            /* answers still to come */
  req_kind_t kind;
  int cancelled;       /* the thread stopped waiting: answers are dropped */
  const char *err;     /* the first transport error (a static string) */
  redisReply **replies; /* kept, owned; in the same block */
  lslot_t *slots;      /* the callbacks' data; in the same block */
};

static void req_free(lreq_t *req) {
  for (int i = 0; i < req->n; i++) shr_redis_reply_free(req->replies[i]);
  free(req);
}

static void on_reply(shr_redis_t *r, redisReply *reply, const char *err, void *data) {
  lslot_t *slot = data;
  lreq_t *req = slot->req;
  if (!req->cancelled) {
    if (!reply) {
      if (!req->err) req->err = err;
    } else {
      req->replies[slot->index] = shr_redis_reply_keep(reply);
    }
  }
  if (--req->left > 0) return;
  if (req->cancelled)
    req_free(req);
  else
    shr_sched_wake(&req->wait);
}

/* ---- replies to Lua ---- */

static void push_value(lua_State *L, const redisReply *r) {
  switch (r->type) {
  case REDIS_REPLY_STRING:
  case REDIS_REPLY_STATUS:
    lua_pushlstring(L, r->str, r->len);
    break;
  case REDIS_REPLY_INTEGER:
    lua_pushnumber(L, (lua_Number)r->integer);
    break;
  case REDIS_REPLY_ERROR:
    lua_createtable(L, 0, 1);
    lua_pushlstring(L, r->str, r->len);
    lua_setfield(L, -2, "err");
    break;
  case REDIS_REPLY_ARRAY:
    luaL_checkstack(L, 4, "redis reply nested too deep");
    lua_createtable(L, (int)r->elements, 0);
    for (size_t i = 0; i < r->elements; i++) {
      if (r->element[i])
        push_value(L, r->element[i]);
      else
        lua_pushboolean(L, 0);
      lua_rawseti(L, -2, (int)i + 1);
    }
    break;
  default: /* nil */
    lua_pushboolean(L, 0);
    break;
  }
}

/* A {field, value, ...} array as a table keyed by field. */
static void push_hash(lua_State *L, const redisReply *r) {
  lua_createtable(L, 0, (int)(r->elements / 2));
  for (size_t i = 0; i + 1 < r->elements; i += 2) {
    push_value(L, r->element[i]);
    push_value(L, r->element[i + 1]);
    lua_rawset(L, -3);
  }
}

static int push_req(lua_State *co, shr_wait_t *w) {
  lreq_t *req = (lreq_t *)w;
  int nret;
  if (req->err) {
    lua_pushnil(co);
    lua_pushstring(co, req->err);
    nret = 2;
  } else if (req->kind != REQ_PIPELINE) {
    const redisReply *r = req->replies[0];
    nret = 1;
    if (r->type == REDIS_REPLY_NIL) {
      lua_pushnil(co);
    } else if (r->type == REDIS_REPLY_ERROR) {
      lua_pushnil(co);
      lua_pushlstring(co, r->str, r->len);
      nret = 2;
    } else if (req->kind == REQ_HASH && r->type == REDIS_REPLY_ARRAY) {
      push_hash(co, r);
    } else {
      push_value(co, r);
    }
  } else {
    lua_createtable(co, req->n, 0);
    int results = lua_gettop(co), errors = 0;
    for (int i = 0; i < req->n; i++) {
      const redisReply *r = req->replies[i];
      if (r->type == REDIS_REPLY_ERROR) {
        if (!errors) {
          lua_createtable(co, 0, 1);
          errors = lua_gettop(co);
        }
        lua_pushlstring(co, r->str, r->len);
        lua_rawseti(co, errors, i + 1);
        lua_pushboolean(co, 0);
      } else {
        push_value(co, r);
      }
      lua_rawseti(co, results, i + 1);
    }
    nret = errors ? 2 : 1;
  }
  req_free(req);
  return nret;
}

static void cancel_req(shr_wait_t *w) {
  lreq_t *req = (lreq_t *)w;
  req->cancelled = 1;
  /* Answers already in are released now; the rest as they come. */
  for (int i = 0; i < req->n; i++) {
    shr_redis_reply_free(req->replies[i]);
    req->replies[i] = NULL;
  }
  if (req->left == 0) req_free(req);
}

static lreq_t *req_new(lua_State *L, int n, req_kind_t kind) {
  lreq_t *req = calloc(1, sizeof *req + (size_t)n * (sizeof(redisReply *) + sizeof(lslot_t)));
  if (!req) luaL_error(L, "redis: out of memory");
  req->wait.push = push_req;
  req->wait.cancel = cancel_req;
  req->n = req->left = n;
  req->kind = kind;
  req->replies = (redisReply **)(req + 1);
  req->slots = (lslot_t *)(req->replies + n);
  for (int i = 0; i < n; i++) req->slots[i] = (lslot_t){req, i};
  return req;
}

/* ---- arguments ---- */

/* Checks that stack slot idx holds a string or a number and leaves a string
 * there: integral numbers as integers, others with %.17g (round-trip exact). */
static void to_arg(lua_State *L, int idx, const char *fn, int argno) {
  int t = lua_type(L, idx);
  if (t == LUA_TSTRING) return;
  if (t != LUA_TNUMBER)
    luaL_error(L, "bad argument #%d to '%s' (string or number expected, got %s)", argno, fn, lua_typename(L, t));
  lua_Number x = lua_tonumber(L, idx);
  char buf[48];
  if (x == floor(x) && x >= -9223372036854775808.0 && x < 9223372036854775808.0)
    snprintf(buf, sizeof buf, "%lld", (long long)x);
  else
    snprintf(buf, sizeof buf, "%.17g", x);
  lua_pushstring(L, buf);
  lua_replace(L, idx);
}

/* Argument vectors in a userdata pushed on the stack, so an error raised later
 * leaks nothing. */
static void vectors(lua_State *L, int n, const char ***argv, size_t **argvlen) {
  void *block = lua_newuserdata(L, (size_t)n * (sizeof(char *) + sizeof(size_t)));
  *argv = block;
  *argvlen = (size_t *)(*argv + n);
}

/* Fills argv from the n strings at stack slots first..first+n-1. */
static void collect(lua_State *L, int first, int n, const char **argv, size_t *argvlen) {
  for (int i = 0; i < n; i++) argv[i] = lua_tolstring(L, first + i, &argvlen[i]);
}

static int named(const char *arg, size_t len, const char *name) {
  return len == strlen(name) && strncasecmp(arg, name, len) == 0;
}

/* Whether a command named cmd blocks the connection it is sent on: 1 always,
 * 2 when one of its arguments is BLOCK, 0 never. */
static int blocking_kind(const char *cmd, size_t len) {
  /* All of them start with B, W or X: most commands are told apart here. */
  int first = len ? toupper((unsigned char)cmd[0]) : 0;
  if (first != 'B' && first != 'W' && first != 'X') return 0;
  static const char *const always[] = {"BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP",
                                       "BZPOPMIN", "BZPOPMAX", "BZMPOP", "WAIT", NULL};
  for (int i = 0; always[i]; i++)
    if (named(cmd, len, always[i])) return 1;
  return named(cmd, len, "XREAD") || named(cmd, len, "XREADGROUP") ? 2 : 0;
}

static int blocking(int argc, const char **argv, const size_t *argvlen) {
  int kind = argc ? blocking_kind(argv[0], argvlen[0]) : 0;
  for (int i = 1; kind == 2 && i < argc; i++)
    if (named(argv[i], argvlen[i], "BLOCK")) return 1;
  return kind == 1;
}

/* The same for the command table at stack index idx (strings and numbers). */
static int blocking_table(lua_State *L, int idx) {
  size_t len;
  lua_rawgeti(L, idx, 1);
  const char *cmd = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
  int kind = cmd ? blocking_kind(cmd, len) : 0;
  lua_pop(L, 1);
  for (int j = 2, m = (int)lua_objlen(L, idx); kind == 2 && j <= m; j++) {
    lua_rawgeti(L, idx, j);
    const char *arg = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    int block = arg && named(arg, len, "BLOCK");
    lua_pop(L, 1);
    if (block) return 1;
  }
  return kind == 1;
}

/* The connection for a command: blocking ones get a connection of their own,
 * so they never hold up the ordinary commands of the other threads. */
static shr_redis_t *client(lua_State *L, int is_blocking) {
  shr_env_t *env = shr_env_of(L);
  if (!env) return NULL;
  if (!is_blocking) return env->redis;
  if (!env->redis_blocking) env->redis_blocking = shr_redis_new(env->loop, env->config->redis_url, "blocking");
  return env->redis_blocking;
}

static int not_connected(lua_State *L) {
  lua_pushnil(L);
  lua_pushliteral(L, "redis: not connected");
  return 2;
}

/* ---- module functions ---- */

/* A call of up to this many arguments keeps its vectors on the C stack: a
 * userdata for them cost ~400 instructions a call (it and its collection). */
#define STACK_ARGS 8

/* Sends one command on the client (the blocking one when `blocking`) and
 * waits for its answer, given to Lua as `kind` says. */
static int send_one(lua_State *L, int blocking, req_kind_t kind, int argc, const char **argv, const size_t *argvlen) {
  shr_redis_t *r = client(L, blocking);
  if (!r) return not_connected(L);
  lreq_t *req = req_new(L, 1, kind);
  shr_redis_command(r, on_reply, &req->slots[0], argc, argv, argvlen);
  return shr_sched_wait(L, &req->wait);
}

static int l_call(lua_State *L) {
  int argc = lua_gettop(L);
  for (int i = 1; i <= (argc ? argc : 1); i++) to_arg(L, i, "call", i);
  shr_sched_current(L);
  const char *argv_stack[STACK_ARGS];
  size_t argvlen_stack[STACK_ARGS];
  const char **argv = argv_stack;
  size_t *argvlen = argvlen_stack;
  if (argc > STACK_ARGS) vectors(L, argc, &argv, &argvlen);
  collect(L, 1, argc, argv, argvlen);
  return send_one(L, blocking(argc, argv, argvlen), REQ_CALL, argc, argv, argvlen);
}

static int l_hgetall(lua_State *L) {
  to_arg(L, 1, "hgetall", 1);
  shr_sched_current(L);
  size_t keylen;
  const char *key = lua_tolstring(L, 1, &keylen);
  const char *argv[] = {"HGETALL", key};
  size_t argvlen[] = {strlen("HGETALL"), keylen};
  return send_one(L, 0, REQ_HASH, 2, argv, argvlen);
}

static int l_pipeline(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int n = (int)lua_objlen(L, 1), widest = 0, blocks = 0;
  /* Check every command before sending any, so misuse sends nothing. */
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    if (!lua_istable(L, -1))
      return luaL_error(L, "bad argument #1 to 'pipeline' (command %d: table expected, got %s)", i,
                        luaL_typename(L, -1));
    int m = (int)lua_objlen(L, -1);
    if (m == 0) return luaL_error(L, "bad argument #1 to 'pipeline' (command %d is empty)", i);
    for (int j = 1; j <= m; j++) {
      lua_rawgeti(L, -1, j);
      int t = lua_type(L, -1);
      if (t != LUA_TSTRING && t != LUA_TNUMBER)
        return luaL_error(L, "bad argument #1 to 'pipeline' (command %d, element %d: string or number expected, got %s)",
                          i, j, lua_typename(L, t));
      lua_pop(L, 1);
    }
    if (m > widest) widest = m;
    blocks = blocks || blocking_table(L, lua_gettop(L));
    lua_pop(L, 1);
  }
  shr_sched_current(L);
  if (n == 0) {
    lua_newtable(L);
    return 1;
  }
  shr_redis_t *r = client(L, blocks);
  if (!r) return not_connected(L);
  const char **argv;
  size_t *argvlen;
  vectors(L, widest, &argv, &argvlen);
  int base = lua_gettop(L);
  luaL_checkstack(L, widest + 1, "pipeline command too long");
  lreq_t *req = req_new(L, n, REQ_PIPELINE);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    int m = (int)lua_objlen(L, -1), cmd = lua_gettop(L);
    for (int j = 1; j <= m; j++) {
      lua_rawgeti(L, cmd, j);
      to_arg(L, -1, "pipeline", 1);
    }
    collect(L, cmd + 1, m, argv, argvlen);
    shr_redis_command(r, on_reply, &req->slots[i - 1], m, argv, argvlen);
    lua_settop(L, base);
  }
  return shr_sched_wait(L, &req->wait);
}

static int l_connected(lua_State *L) {
  shr_redis_t *r = client(L, 0);
  lua_pushboolean(L, r && shr_redis_connected(r));
  return 1;
}

/* ---- scripts ---- */

typedef struct {
  shr_redis_script_t *s; /* one reference; calls in flight hold their own */
} lscript_t;

static int l_script(lua_State *L) {
  size_t len;
  const char *src = luaL_checklstring(L, 1, &len);
  lscript_t *ud = lua_newuserdata(L, sizeof *ud);
  ud->s = NULL;
  luaL_getmetatable(L, SCRIPT_MT);
  lua_setmetatable(L, -2);
  if (!(ud->s = shr_redis_script_new(src, len))) return luaL_error(L, "redis.script: out of memory");
  return 1;
}

static int l_script_gc(lua_State *L) {
  lscript_t *ud = luaL_checkudata(L, 1, SCRIPT_MT);
  if (ud->s) shr_redis_script_free(ud->s);
  ud->s = NULL;
  return 0;
}

/* Pushes the elements of the optional array at idx as argument strings;
 * returns their count. */
static int push_list(lua_State *L, int idx, const char *what) {
  if (lua_isnoneornil(L, idx)) return 0;
  if (!lua_istable(L, idx))
    luaL_error(L, "bad argument #%d to 'call' (%s table expected, got %s)", idx - 1, what, luaL_typename(L, idx));
  int n = (int)lua_objlen(L, idx);
  luaL_checkstack(L, n + 4, "too many script arguments");
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    to_arg(L, -1, "call", idx - 1);
  }
  return n;
}

/* script:call(keys, args) */
static int l_script_call(lua_State *L) {
  lscript_t *ud = luaL_checkudata(L, 1, SCRIPT_MT);
  lua_settop(L, 3);
  int first = lua_gettop(L) + 1;
  int nkeys = push_list(L, 2, "keys");
  int argc = nkeys + push_list(L, 3, "args");
  shr_sched_current(L);
  shr_redis_t *r = client(L, 0);
  if (!r) return not_connected(L);
  const char **argv;
  size_t *argvlen;
  vectors(L, argc ? argc : 1, &argv, &argvlen);
  collect(L, first, argc, argv, argvlen);
  lreq_t *req = req_new(L, 1, REQ_CALL);
  shr_redis_script_call(r, ud->s, on_reply, &req->slots[0], nkeys, argc, argv, argvlen);
  return shr_sched_wait(L, &req->wait);
}

int shr_lua_redis_open(lua_State *L) {
  if (luaL_newmetatable(L, SCRIPT_MT)) {
    lua_pushcfunction(L, l_script_gc);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    lua_pushcfunction(L, l_script_call);
    lua_setfield(L, -2, "call");
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"call", l_call},
                                 {"hgetall", l_hgetall},
                                 {"pipeline", l_pipeline},
                                 {"script", l_script},
                                 {"connected", l_connected},
                                 {NULL, NULL}};
  lua_newtable(L);
  luaL_setfuncs(L, fns, 0);
  return 1;
}
