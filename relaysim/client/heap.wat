;; relaysim reference client: the app's heap.
;;
;; A bump allocator that never frees, like the Smesh app's `gc_leaking` runtime: every byte
;; handed out stays allocated for the lifetime of the instance, so the only remedies are not
;; allocating (bounded caches, no idle work) and restarting the Worker.  The counters mirror
;; `runtime.ReadMemStats` (totalAlloc, mallocs, heapInuse, sys) and the seed's
;; `alloc_trace.mx` (one count/bytes pair per allocation site, the last site an overflow bucket).
;;
;; Memory layout (all little-endian u32), read by worker.mjs at fixed addresses:
;;   0  magic "RSHP"        4  heap pointer        8  heap base
;;   12 totalAlloc          16 mallocs             20 number of site slots (64)
;;   64 + 8*site: count, 68 + 8*site: bytes        1024 heap base (first allocation)
;; Every allocation is rounded up to 8 bytes and the rounded size is what every counter
;; records, so sum(site bytes) == totalAlloc == heapInuse exactly.
(module
  (memory (export "memory") 1 32768)

  (global $sites i32 (i32.const 64))
  (global $max_site i32 (i32.const 63))
  (global $base i32 (i32.const 1024))

  (func $init
    (i32.store (i32.const 0) (i32.const 0x50485352)) ;; "RSHP"
    (i32.store (i32.const 4) (global.get $base))
    (i32.store (i32.const 8) (global.get $base))
    (i32.store (i32.const 20) (i32.const 64)))
  (start $init)

  ;; malloc(size, site) -> pointer, or 0 when memory cannot grow any more (nothing counted then).
  (func (export "malloc") (param $size i32) (param $site i32) (result i32)
    (local $ptr i32) (local $end i32) (local $have i32) (local $slot i32)
    (local.set $size (i32.and (i32.add (local.get $size) (i32.const 7)) (i32.const -8)))
    (if (i32.gt_u (local.get $site) (global.get $max_site))
      (then (local.set $site (global.get $max_site))))
    (local.set $ptr (i32.load (i32.const 4)))
    (local.set $end (i32.add (local.get $ptr) (local.get $size)))
    (if (i32.lt_u (local.get $end) (local.get $ptr)) (then (return (i32.const 0))))
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow
                (i32.shr_u
                  (i32.add (i32.sub (local.get $end) (local.get $have)) (i32.const 65535))
                  (i32.const 16)))
              (i32.const -1))
          (then (return (i32.const 0))))))
    (i32.store (i32.const 4) (local.get $end))
    (i32.store (i32.const 12) (i32.add (i32.load (i32.const 12)) (local.get $size)))
    (i32.store (i32.const 16) (i32.add (i32.load (i32.const 16)) (i32.const 1)))
    (local.set $slot (i32.add (global.get $sites) (i32.shl (local.get $site) (i32.const 3))))
    (i32.store (local.get $slot) (i32.add (i32.load (local.get $slot)) (i32.const 1)))
    (i32.store offset=4 (local.get $slot)
      (i32.add (i32.load offset=4 (local.get $slot)) (local.get $size)))
    (local.get $ptr))

  ;; free is a no-op: gc_leaking never gives memory back.
  (func (export "free") (param $ptr i32))

  (func (export "total_alloc") (result i32) (i32.load (i32.const 12)))
  (func (export "mallocs") (result i32) (i32.load (i32.const 16)))
  (func (export "heap_inuse") (result i32)
    (i32.sub (i32.load (i32.const 4)) (i32.load (i32.const 8))))
  (func (export "sys") (result i32) (i32.shl (memory.size) (i32.const 16)))
  (func (export "heap_base") (result i32) (global.get $base))
  (func (export "site_count") (param $site i32) (result i32)
    (i32.load (i32.add (global.get $sites) (i32.shl (local.get $site) (i32.const 3)))))
  (func (export "site_bytes") (param $site i32) (result i32)
    (i32.load offset=4 (i32.add (global.get $sites) (i32.shl (local.get $site) (i32.const 3)))))
)
