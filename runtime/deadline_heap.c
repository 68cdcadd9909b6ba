#include "deadline_heap.h"

#include <stdlib.h>

static void place(shr_deadline_heap_t *h, int i, shr_thread_t *t) {
  h->items[i] = t;
  *shr_thread_heap_index(t) = i;
}

static int less(shr_deadline_heap_t *h, int a, int b) {
  return shr_thread_deadline(h->items[a]) < shr_thread_deadline(h->items[b]);
}

static void swap(shr_deadline_heap_t *h, int a, int b) {
  shr_thread_t *ta = h->items[a], *tb = h->items[b];
  place(h, a, tb);
  place(h, b, ta);
}

static void sift_up(shr_deadline_heap_t *h, int i) {
  while (i > 0 && less(h, i, (i - 1) / 2)) {
    swap(h, i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
}

static void sift_down(shr_deadline_heap_t *h, int i) {
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    if (l < h->len && less(h, l, m)) m = l;
    if (r < h->len && less(h, r, m)) m = r;
    if (m == i) return;
    swap(h, i, m);
    i = m;
  }
}

void shr_deadline_heap_init(shr_deadline_heap_t *h) { *h = (shr_deadline_heap_t){0}; }
void shr_deadline_heap_free(shr_deadline_heap_t *h) { free(h->items); }

int shr_deadline_heap_insert(shr_deadline_heap_t *h, shr_thread_t *t) {
  if (h->len == h->cap) {
    int cap = h->cap ? h->cap * 2 : 64;
    shr_thread_t **items = realloc(h->items, (size_t)cap * sizeof *items);
    if (!items) return -1;
    h->items = items;
    h->cap = cap;
  }
  place(h, h->len++, t);
  sift_up(h, h->len - 1);
  return 0;
}

void shr_deadline_heap_remove(shr_deadline_heap_t *h, shr_thread_t *t) {
  int i = *shr_thread_heap_index(t);
  *shr_thread_heap_index(t) = -1;
  h->len--;
  if (i == h->len) return;
  place(h, i, h->items[h->len]);
  sift_down(h, i);
  sift_up(h, i);
}

shr_thread_t *shr_deadline_heap_min(const shr_deadline_heap_t *h) { return h->len ? h->items[0] : NULL; }
