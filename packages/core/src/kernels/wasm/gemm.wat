;; dptrain GEMM kernels: WebAssembly SIMD128 (plain mul + add, no FMA, no relaxed SIMD).
;; build-wasm.mjs also derives the FMA variant (kernel 'wasm-fma') from this text: each
;; multiply-add step of the tile becomes one f32x4.relaxed_madd, i.e. acc = fma(a, b, acc),
;; a single rounding per step. Everything else is the same code.
;;
;; Assembled by packages/core/scripts/build-wasm.mjs into gemm.wasm.ts (base64).
;; Driven by wasm.ts, which owns the memory layout and hands in byte addresses.
;;
;; Every product is C[r, l] = sum over s of A'[r, s] * B'[s, l] computed by one 4x8
;; register tile ($tile): 4 rows (A' broadcast with load32_splat) by 8 lanes (two f32x4
;; of B'), eight f32x4 accumulators. Each output element is its own lane of its own
;; accumulator, updated as acc = acc + a*b (f32 mul then f32 add) for s = 0, 1, 2, ...
;; in order, over the whole shared length. So an element's bits depend only on its
;; own row of A' and column of B' -- not on m, on the tile it falls in, or on which
;; lane it occupies -- and edge tiles run exactly the same arithmetic (missing rows
;; and lanes are computed on padding or on neighbouring memory and never stored).
;;
;; Operands are packed into panels first (zero-padded at the edges), except the bias,
;; which the tile reads 8 lanes at a time: up to 28 bytes past its end. wasm.ts keeps a
;; guard at the top of memory so such reads stay in bounds.

(module
  (import "env" "memory" (memory 1))

  ;; Store the first $cols (0..8) lanes of $v0:$v1 (8 f32) at $p.
  (func $store_row (param $p i32) (param $v0 v128) (param $v1 v128) (param $cols i32)
    (if (i32.ge_u (local.get $cols) (i32.const 4))
      (then
        (v128.store (local.get $p) (local.get $v0))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $v0 (local.get $v1))
        (local.set $cols (i32.sub (local.get $cols) (i32.const 4)))))
    (if (i32.ge_u (local.get $cols) (i32.const 4))
      (then
        (v128.store (local.get $p) (local.get $v0))
        (return)))
    (if (i32.eqz (local.get $cols)) (then (return)))
    (f32.store (local.get $p) (f32x4.extract_lane 0 (local.get $v0)))
    (if (i32.eq (local.get $cols) (i32.const 1)) (then (return)))
    (f32.store offset=4 (local.get $p) (f32x4.extract_lane 1 (local.get $v0)))
    (if (i32.eq (local.get $cols) (i32.const 2)) (then (return)))
    (f32.store offset=8 (local.get $p) (f32x4.extract_lane 2 (local.get $v0))))

  ;; The 4x8 register tile.
  ;;   A'[r, s] = f32 at $a + r*4 + s*$as   (r = 0..3)
  ;;   B'[s, l] = f32 at $b + l*4 + s*$bs   (l = 0..7)
  ;;   C[r, l]  = f32 at $c + r*$ldc + l*4, stored for r < $rows, l < $cols
  ;; $cnt is the shared length (may be 0); $bias, if nonzero, is the address of 8 f32
  ;; added to every row after the sum.
  (func $tile (param $a i32) (param $as i32) (param $b i32) (param $bs i32) (param $cnt i32)
              (param $c i32) (param $ldc i32) (param $rows i32) (param $cols i32) (param $bias i32)
              (param $relu i32)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local $b0 v128) (local $b1 v128) (local $x v128)
    (if (local.get $cnt)
      (then
        (loop $s
          (local.set $b0 (v128.load (local.get $b)))
          (local.set $b1 (v128.load offset=16 (local.get $b)))
          (local.set $x (v128.load32_splat (local.get $a)))
          (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $x) (local.get $b0))))
          (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $x) (local.get $b1))))
          (local.set $x (v128.load32_splat offset=4 (local.get $a)))
          (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $x) (local.get $b0))))
          (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $x) (local.get $b1))))
          (local.set $x (v128.load32_splat offset=8 (local.get $a)))
          (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $x) (local.get $b0))))
          (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $x) (local.get $b1))))
          (local.set $x (v128.load32_splat offset=12 (local.get $a)))
          (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $x) (local.get $b0))))
          (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $x) (local.get $b1))))
          (local.set $a (i32.add (local.get $a) (local.get $as)))
          (local.set $b (i32.add (local.get $b) (local.get $bs)))
          (br_if $s (local.tee $cnt (i32.sub (local.get $cnt) (i32.const 1)))))))
    (if (local.get $bias)
      (then
        (local.set $b0 (v128.load (local.get $bias)))
        (local.set $b1 (v128.load offset=16 (local.get $bias)))
        (local.set $c00 (f32x4.add (local.get $c00) (local.get $b0)))
        (local.set $c01 (f32x4.add (local.get $c01) (local.get $b1)))
        (local.set $c10 (f32x4.add (local.get $c10) (local.get $b0)))
        (local.set $c11 (f32x4.add (local.get $c11) (local.get $b1)))
        (local.set $c20 (f32x4.add (local.get $c20) (local.get $b0)))
        (local.set $c21 (f32x4.add (local.get $c21) (local.get $b1)))
        (local.set $c30 (f32x4.add (local.get $c30) (local.get $b0)))
        (local.set $c31 (f32x4.add (local.get $c31) (local.get $b1)))))
    ;; fused ReLU: pmax(0, x) = (0 < x) ? x : 0, the JS `x > 0 ? x : 0` bit for bit
    ;; (NaN and -0 become +0)
    (if (local.get $relu)
      (then
        (local.set $x (f32x4.splat (f32.const 0)))
        (local.set $c00 (f32x4.pmax (local.get $x) (local.get $c00)))
        (local.set $c01 (f32x4.pmax (local.get $x) (local.get $c01)))
        (local.set $c10 (f32x4.pmax (local.get $x) (local.get $c10)))
        (local.set $c11 (f32x4.pmax (local.get $x) (local.get $c11)))
        (local.set $c20 (f32x4.pmax (local.get $x) (local.get $c20)))
        (local.set $c21 (f32x4.pmax (local.get $x) (local.get $c21)))
        (local.set $c30 (f32x4.pmax (local.get $x) (local.get $c30)))
        (local.set $c31 (f32x4.pmax (local.get $x) (local.get $c31)))))
    (if (i32.and (i32.eq (local.get $rows) (i32.const 4)) (i32.eq (local.get $cols) (i32.const 8)))
      (then
        (v128.store (local.get $c) (local.get $c00))
        (v128.store offset=16 (local.get $c) (local.get $c01))
        (local.set $c (i32.add (local.get $c) (local.get $ldc)))
        (v128.store (local.get $c) (local.get $c10))
        (v128.store offset=16 (local.get $c) (local.get $c11))
        (local.set $c (i32.add (local.get $c) (local.get $ldc)))
        (v128.store (local.get $c) (local.get $c20))
        (v128.store offset=16 (local.get $c) (local.get $c21))
        (local.set $c (i32.add (local.get $c) (local.get $ldc)))
        (v128.store (local.get $c) (local.get $c30))
        (v128.store offset=16 (local.get $c) (local.get $c31))
        (return)))
    (call $store_row (local.get $c) (local.get $c00) (local.get $c01) (local.get $cols))
    (if (i32.lt_u (local.get $rows) (i32.const 2)) (then (return)))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (call $store_row (local.get $c) (local.get $c10) (local.get $c11) (local.get $cols))
    (if (i32.lt_u (local.get $rows) (i32.const 3)) (then (return)))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (call $store_row (local.get $c) (local.get $c20) (local.get $c21) (local.get $cols))
    (if (i32.lt_u (local.get $rows) (i32.const 4)) (then (return)))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (call $store_row (local.get $c) (local.get $c30) (local.get $c31) (local.get $cols)))

  ;; Transpose 4 full rows of a row-major matrix into one 4-wide panel: for s < $len,
  ;; dst + s*$step gets (row0[s], row1[s], row2[s], row3[s]); rows are $ld bytes apart.
  ;; 4x4 blocks via shuffles; bits are moved untouched.
  (func $pack4 (param $src i32) (param $ld i32) (param $len i32) (param $dst i32) (param $step i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local $r1 i32) (local $r2 i32) (local $r3 i32)
    (local.set $r1 (i32.add (local.get $src) (local.get $ld)))
    (local.set $r2 (i32.add (local.get $r1) (local.get $ld)))
    (local.set $r3 (i32.add (local.get $r2) (local.get $ld)))
    (block $blocks_done
      (loop $blocks
        (br_if $blocks_done (i32.lt_u (local.get $len) (i32.const 4)))
        (local.set $v0 (v128.load (local.get $src)))
        (local.set $v1 (v128.load (local.get $r1)))
        (local.set $v2 (v128.load (local.get $r2)))
        (local.set $v3 (v128.load (local.get $r3)))
        ;; t0 = v0.0 v1.0 v0.1 v1.1   t1 = v2.0 v3.0 v2.1 v3.1
        ;; t2 = v0.2 v1.2 v0.3 v1.3   t3 = v2.2 v3.2 v2.3 v3.3
        (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $v0) (local.get $v1)))
        (local.set $t1 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $v2) (local.get $v3)))
        (local.set $t2 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $v0) (local.get $v1)))
        (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $v2) (local.get $v3)))
        (v128.store (local.get $dst)
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t1)))
        (local.set $dst (i32.add (local.get $dst) (local.get $step)))
        (v128.store (local.get $dst)
          (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t1)))
        (local.set $dst (i32.add (local.get $dst) (local.get $step)))
        (v128.store (local.get $dst)
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t2) (local.get $t3)))
        (local.set $dst (i32.add (local.get $dst) (local.get $step)))
        (v128.store (local.get $dst)
          (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t2) (local.get $t3)))
        (local.set $dst (i32.add (local.get $dst) (local.get $step)))
        (local.set $src (i32.add (local.get $src) (i32.const 16)))
        (local.set $r1 (i32.add (local.get $r1) (i32.const 16)))
        (local.set $r2 (i32.add (local.get $r2) (i32.const 16)))
        (local.set $r3 (i32.add (local.get $r3) (i32.const 16)))
        (local.set $len (i32.sub (local.get $len) (i32.const 4)))
        (br $blocks)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.eqz (local.get $len)))
        (i32.store (local.get $dst) (i32.load (local.get $src)))
        (i32.store offset=4 (local.get $dst) (i32.load (local.get $r1)))
        (i32.store offset=8 (local.get $dst) (i32.load (local.get $r2)))
        (i32.store offset=12 (local.get $dst) (i32.load (local.get $r3)))
        (local.set $dst (i32.add (local.get $dst) (local.get $step)))
        (local.set $src (i32.add (local.get $src) (i32.const 4)))
        (local.set $r1 (i32.add (local.get $r1) (i32.const 4)))
        (local.set $r2 (i32.add (local.get $r2) (i32.const 4)))
        (local.set $r3 (i32.add (local.get $r3) (i32.const 4)))
        (local.set $len (i32.sub (local.get $len) (i32.const 1)))
        (br $tail))))

  ;; Copy one row (lane $r of a panel) element by element, or zeros when $src is 0:
  ;; dst + s*$step gets row[s] for s < $len.
  (func $pack1 (param $src i32) (param $len i32) (param $dst i32) (param $step i32)
    (block $done
      (loop $copy
        (br_if $done (i32.eqz (local.get $len)))
        (i32.store (local.get $dst)
          (if (result i32) (local.get $src)
            (then (i32.load (local.get $src)))
            (else (i32.const 0))))
        (if (local.get $src) (then (local.set $src (i32.add (local.get $src) (i32.const 4)))))
        (local.set $dst (i32.add (local.get $dst) (local.get $step)))
        (local.set $len (i32.sub (local.get $len) (i32.const 1)))
        (br $copy))))

  ;; Pack a row-major [rows x len] f32 matrix at $src into panels of $w (4 or 8) rows,
  ;; [panel][s][w] at $dst: dst[(q*len + s)*w + r] = src[(q*w + r)*len + s], zeros for
  ;; rows past the last one.
  (func $pack_rows (param $src i32) (param $rows i32) (param $len i32) (param $w i32) (param $dst i32)
    (local $q i32) (local $g i32) (local $r i32) (local $ld i32) (local $step i32)
    (local.set $ld (i32.shl (local.get $len) (i32.const 2)))
    (local.set $step (i32.shl (local.get $w) (i32.const 2)))
    (block $done
      (loop $panels
        (br_if $done (i32.ge_u (local.get $q) (local.get $rows)))
        (local.set $g (i32.const 0))
        (loop $groups
          (if (i32.le_u (i32.add (i32.add (local.get $q) (local.get $g)) (i32.const 4)) (local.get $rows))
            (then
              (call $pack4
                (i32.add (local.get $src) (i32.mul (i32.add (local.get $q) (local.get $g)) (local.get $ld)))
                (local.get $ld) (local.get $len)
                (i32.add (local.get $dst) (i32.shl (local.get $g) (i32.const 2)))
                (local.get $step)))
            (else
              (local.set $r (local.get $g))
              (loop $lanes
                (call $pack1
                  (select
                    (i32.add (local.get $src) (i32.mul (i32.add (local.get $q) (local.get $r)) (local.get $ld)))
                    (i32.const 0)
                    (i32.lt_u (i32.add (local.get $q) (local.get $r)) (local.get $rows)))
                  (local.get $len)
                  (i32.add (local.get $dst) (i32.shl (local.get $r) (i32.const 2)))
                  (local.get $step))
                (local.set $r (i32.add (local.get $r) (i32.const 1)))
                (br_if $lanes (i32.lt_u (local.get $r) (i32.add (local.get $g) (i32.const 4)))))))
          (local.set $g (i32.add (local.get $g) (i32.const 4)))
          (br_if $groups (i32.lt_u (local.get $g) (local.get $w))))
        (local.set $dst (i32.add (local.get $dst) (i32.mul (local.get $len) (local.get $step))))
        (local.set $q (i32.add (local.get $q) (local.get $w)))
        (br $panels))))

  ;; Pack $w (4 or 8) adjacent columns at a time of a [len x cols] f32 matrix at $src with
  ;; rows $ld bytes apart into panels [panel][s][w] at $dst:
  ;; dst[(q*len + s)*w + l] = src[s*ld/4 + q*w + l], zeros for columns past the last one.
  (func $pack_cols (param $src i32) (param $ld i32) (param $cols i32) (param $len i32) (param $w i32) (param $dst i32)
    (local $q i32) (local $s i32) (local $l i32) (local $sp i32)
    (block $done
      (loop $panels
        (br_if $done (i32.ge_u (local.get $q) (local.get $cols)))
        (local.set $sp (i32.add (local.get $src) (i32.shl (local.get $q) (i32.const 2))))
        (local.set $s (i32.const 0))
        (if (i32.le_u (i32.add (local.get $q) (local.get $w)) (local.get $cols))
          (then
            (block $full_done
              (loop $full
                (br_if $full_done (i32.ge_u (local.get $s) (local.get $len)))
                (v128.store (local.get $dst) (v128.load (local.get $sp)))
                (if (i32.eq (local.get $w) (i32.const 8))
                  (then (v128.store offset=16 (local.get $dst) (v128.load offset=16 (local.get $sp)))))
                (local.set $dst (i32.add (local.get $dst) (i32.shl (local.get $w) (i32.const 2))))
                (local.set $sp (i32.add (local.get $sp) (local.get $ld)))
                (local.set $s (i32.add (local.get $s) (i32.const 1)))
                (br $full))))
          (else
            (block $edge_done
              (loop $edge
                (br_if $edge_done (i32.ge_u (local.get $s) (local.get $len)))
                (local.set $l (i32.const 0))
                (loop $lanes
                  (i32.store (local.get $dst)
                    (if (result i32) (i32.lt_u (i32.add (local.get $q) (local.get $l)) (local.get $cols))
                      (then (i32.load (i32.add (local.get $sp) (i32.shl (local.get $l) (i32.const 2)))))
                      (else (i32.const 0))))
                  (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
                  (local.set $l (i32.add (local.get $l) (i32.const 1)))
                  (br_if $lanes (i32.lt_u (local.get $l) (local.get $w))))
                (local.set $sp (i32.add (local.get $sp) (local.get $ld)))
                (local.set $s (i32.add (local.get $s) (i32.const 1)))
                (br $edge)))))
        (local.set $q (i32.add (local.get $q) (local.get $w)))
        (br $panels))))

  ;; min(x, cap) for the tile edge sizes.
  (func $clip (param $x i32) (param $cap i32) (result i32)
    (select (local.get $cap) (local.get $x) (i32.gt_u (local.get $x) (local.get $cap))))

  ;; Element-wise sum: dst[i] = dst[i] + src[i] for i < $n (f32, round to nearest: the same bits as
  ;; any IEEE single-precision addition, so the same as the JS kernels). 16 floats per iteration,
  ;; then 4, then single floats. $dst and $src may be equal; other overlaps are not supported.
  (func (export "vadd") (param $dst i32) (param $src i32) (param $n i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $dst) (i32.shl (local.get $n) (i32.const 2))))
    (block $done16
      (loop $l16
        (br_if $done16 (i32.gt_u (i32.add (local.get $dst) (i32.const 64)) (local.get $end)))
        (v128.store (local.get $dst) (f32x4.add (v128.load (local.get $dst)) (v128.load (local.get $src))))
        (v128.store offset=16 (local.get $dst) (f32x4.add (v128.load offset=16 (local.get $dst)) (v128.load offset=16 (local.get $src))))
        (v128.store offset=32 (local.get $dst) (f32x4.add (v128.load offset=32 (local.get $dst)) (v128.load offset=32 (local.get $src))))
        (v128.store offset=48 (local.get $dst) (f32x4.add (v128.load offset=48 (local.get $dst)) (v128.load offset=48 (local.get $src))))
        (local.set $dst (i32.add (local.get $dst) (i32.const 64)))
        (local.set $src (i32.add (local.get $src) (i32.const 64)))
        (br $l16)))
    (block $done4
      (loop $l4
        (br_if $done4 (i32.gt_u (i32.add (local.get $dst) (i32.const 16)) (local.get $end)))
        (v128.store (local.get $dst) (f32x4.add (v128.load (local.get $dst)) (v128.load (local.get $src))))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (local.set $src (i32.add (local.get $src) (i32.const 16)))
        (br $l4)))
    (block $done1
      (loop $l1
        (br_if $done1 (i32.ge_u (local.get $dst) (local.get $end)))
        (f32.store (local.get $dst) (f32.add (f32.load (local.get $dst)) (f32.load (local.get $src))))
        (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
        (local.set $src (i32.add (local.get $src) (i32.const 4)))
        (br $l1))))

  ;; 1 when the $n f32 at $src are all finite, else 0: x*0 is +-0 for finite x and NaN for
  ;; NaN and +-Infinity, and a sum of such values is NaN exactly when one of them is.
  (func (export "vfinite") (param $src i32) (param $n i32) (result i32)
    (local $end i32) (local $acc v128) (local $zero v128) (local $s f32)
    (local.set $end (i32.add (local.get $src) (i32.shl (local.get $n) (i32.const 2))))
    (block $done4
      (loop $l4
        (br_if $done4 (i32.gt_u (i32.add (local.get $src) (i32.const 16)) (local.get $end)))
        (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (v128.load (local.get $src)) (local.get $zero))))
        (local.set $src (i32.add (local.get $src) (i32.const 16)))
        (br $l4)))
    (block $done1
      (loop $l1
        (br_if $done1 (i32.ge_u (local.get $src) (local.get $end)))
        (local.set $s (f32.add (local.get $s) (f32.mul (f32.load (local.get $src)) (f32.const 0))))
        (local.set $src (i32.add (local.get $src) (i32.const 4)))
        (br $l1)))
    (i32.and
      (i32.eqz (v128.any_true (f32x4.ne (local.get $acc) (local.get $acc))))
      (f32.eq (local.get $s) (local.get $s))))

  ;; ReLU's derivative applied to a gradient: d[i] = h[i] > 0 ? d[i] : +0 for i < $n
  ;; (the JS `if (!(h > 0)) d = 0`; NaN in h gives +0).
  (func (export "vrelu_grad") (param $d i32) (param $h i32) (param $n i32)
    (local $end i32) (local $zero v128)
    (local.set $end (i32.add (local.get $d) (i32.shl (local.get $n) (i32.const 2))))
    (block $done4
      (loop $l4
        (br_if $done4 (i32.gt_u (i32.add (local.get $d) (i32.const 16)) (local.get $end)))
        (v128.store (local.get $d)
          (v128.and (v128.load (local.get $d)) (f32x4.gt (v128.load (local.get $h)) (local.get $zero))))
        (local.set $d (i32.add (local.get $d) (i32.const 16)))
        (local.set $h (i32.add (local.get $h) (i32.const 16)))
        (br $l4)))
    (block $done1
      (loop $l1
        (br_if $done1 (i32.ge_u (local.get $d) (local.get $end)))
        (if (i32.eqz (f32.gt (f32.load (local.get $h)) (f32.const 0)))
          (then (f32.store (local.get $d) (f32.const 0))))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (local.set $h (i32.add (local.get $h) (i32.const 4)))
        (br $l1))))

  ;; Column sums: out[j] = sum over r < $rows of d[r*$n + j], accumulated in f64 in row order
  ;; and rounded to f32 once (the JS loop's arithmetic); four columns at a time.
  (func (export "col_sums") (param $d i32) (param $rows i32) (param $n i32) (param $out i32)
    (local $j i32) (local $r i32) (local $p i32) (local $v v128) (local $lo v128) (local $hi v128) (local $s f64)
    (block $jdone
      (loop $jl
        (br_if $jdone (i32.gt_u (i32.add (local.get $j) (i32.const 4)) (local.get $n)))
        (local.set $lo (f64x2.splat (f64.const 0)))
        (local.set $hi (f64x2.splat (f64.const 0)))
        (local.set $p (i32.add (local.get $d) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $r (i32.const 0))
        (block $rdone
          (loop $rl
            (br_if $rdone (i32.ge_u (local.get $r) (local.get $rows)))
            (local.set $v (v128.load (local.get $p)))
            (local.set $lo (f64x2.add (local.get $lo) (f64x2.promote_low_f32x4 (local.get $v))))
            (local.set $hi (f64x2.add (local.get $hi) (f64x2.promote_low_f32x4
              (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))))
            (local.set $p (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
            (local.set $r (i32.add (local.get $r) (i32.const 1)))
            (br $rl)))
        (local.set $p (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2))))
        (v128.store64_lane 0 (local.get $p) (f32x4.demote_f64x2_zero (local.get $lo)))
        (v128.store64_lane offset=8 0 (local.get $p) (f32x4.demote_f64x2_zero (local.get $hi)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $jl)))
    (block $tdone
      (loop $tl
        (br_if $tdone (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $s (f64.const 0))
        (local.set $p (i32.add (local.get $d) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $r (i32.const 0))
        (block $rdone2
          (loop $rl2
            (br_if $rdone2 (i32.ge_u (local.get $r) (local.get $rows)))
            (local.set $s (f64.add (local.get $s) (f64.promote_f32 (f32.load (local.get $p)))))
            (local.set $p (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
            (local.set $r (i32.add (local.get $r) (i32.const 1)))
            (br $rl2)))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2))) (f32.demote_f64 (local.get $s)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $tl))))

  ;; a*b + c in lane 0, written as one step of the tile so that the FMA variant fuses it: tells
  ;; at run time whether relaxed_madd is fused on this CPU (kernel 'wasm-fma' needs it to be).
  (func (export "madd_probe") (param $pa f32) (param $pb f32) (param $pc f32) (result f32)
    (local $x v128) (local $b0 v128) (local $c00 v128)
    (local.set $x (f32x4.splat (local.get $pa)))
    (local.set $b0 (f32x4.splat (local.get $pb)))
    (local.set $c00 (f32x4.splat (local.get $pc)))
    (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $x) (local.get $b0))))
    (f32x4.extract_lane 0 (local.get $c00)))

  ;; The update's mean pass: g[i] = f32(f64(g[i]) * $inv) (or / $b when $div is set), in place,
  ;; and the float64 sum of the squares of the stored values in four interleaved partial
  ;; sums (element i into sum i mod 4), returned as (s0 + s1) + (s2 + s3): the JS kernels'
  ;; arithmetic exactly.
  (func (export "mean_sq") (param $g i32) (param $n i32) (param $b f64) (param $inv f64) (param $div i32) (result f64)
    (local $end i32) (local $v v128) (local $lo v128) (local $hi v128) (local $m v128)
    (local $a01 v128) (local $a23 v128) (local $s0 f64) (local $s1 f64) (local $s2 f64) (local $s3 f64)
    (local $k i32) (local $x f64)
    (local.set $end (i32.add (local.get $g) (i32.shl (local.get $n) (i32.const 2))))
    (block $done4
      (loop $l4
        (br_if $done4 (i32.gt_u (i32.add (local.get $g) (i32.const 16)) (local.get $end)))
        (local.set $v (v128.load (local.get $g)))
        (local.set $lo (f64x2.promote_low_f32x4 (local.get $v)))
        (local.set $hi (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))
        (if (local.get $div)
          (then
            (local.set $lo (f64x2.div (local.get $lo) (f64x2.splat (local.get $b))))
            (local.set $hi (f64x2.div (local.get $hi) (f64x2.splat (local.get $b)))))
          (else
            (local.set $lo (f64x2.mul (local.get $lo) (f64x2.splat (local.get $inv))))
            (local.set $hi (f64x2.mul (local.get $hi) (f64x2.splat (local.get $inv))))))
        (local.set $m (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (f32x4.demote_f64x2_zero (local.get $lo)) (f32x4.demote_f64x2_zero (local.get $hi))))
        (v128.store (local.get $g) (local.get $m))
        (local.set $lo (f64x2.promote_low_f32x4 (local.get $m)))
        (local.set $hi (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $m) (local.get $m))))
        (local.set $a01 (f64x2.add (local.get $a01) (f64x2.mul (local.get $lo) (local.get $lo))))
        (local.set $a23 (f64x2.add (local.get $a23) (f64x2.mul (local.get $hi) (local.get $hi))))
        (local.set $g (i32.add (local.get $g) (i32.const 16)))
        (br $l4)))
    (local.set $s0 (f64x2.extract_lane 0 (local.get $a01)))
    (local.set $s1 (f64x2.extract_lane 1 (local.get $a01)))
    (local.set $s2 (f64x2.extract_lane 0 (local.get $a23)))
    (local.set $s3 (f64x2.extract_lane 1 (local.get $a23)))
    ;; the last n % 4 values: lanes 0, 1, 2 in order
    (block $tdone
      (loop $tl
        (br_if $tdone (i32.ge_u (local.get $g) (local.get $end)))
        (local.set $x (f64.promote_f32 (f32.load (local.get $g))))
        (local.set $x (select (f64.div (local.get $x) (local.get $b)) (f64.mul (local.get $x) (local.get $inv)) (local.get $div)))
        (local.set $x (f64.promote_f32 (f32.demote_f64 (local.get $x))))
        (f32.store (local.get $g) (f32.demote_f64 (local.get $x)))
        (local.set $x (f64.mul (local.get $x) (local.get $x)))
        (if (i32.eqz (local.get $k)) (then (local.set $s0 (f64.add (local.get $s0) (local.get $x)))))
        (if (i32.eq (local.get $k) (i32.const 1)) (then (local.set $s1 (f64.add (local.get $s1) (local.get $x)))))
        (if (i32.eq (local.get $k) (i32.const 2)) (then (local.set $s2 (f64.add (local.get $s2) (local.get $x)))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (local.set $g (i32.add (local.get $g) (i32.const 4)))
        (br $tl)))
    (f64.add (f64.add (local.get $s0) (local.get $s1)) (f64.add (local.get $s2) (local.get $s3))))

  ;; Plain SGD: p[i] = f32(f64(p[i]) - $lr * f64(g[i])), the JS loop's arithmetic.
  (func (export "sgd_step") (param $p i32) (param $g i32) (param $n i32) (param $lr f64)
    (local $end i32) (local $vp v128) (local $vg v128) (local $lo v128) (local $hi v128) (local $r v128)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $r (f64x2.splat (local.get $lr)))
    (block $done4
      (loop $l4
        (br_if $done4 (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $end)))
        (local.set $vp (v128.load (local.get $p)))
        (local.set $vg (v128.load (local.get $g)))
        (local.set $lo (f64x2.sub (f64x2.promote_low_f32x4 (local.get $vp))
          (f64x2.mul (local.get $r) (f64x2.promote_low_f32x4 (local.get $vg)))))
        (local.set $hi (f64x2.sub
          (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $vp) (local.get $vp)))
          (f64x2.mul (local.get $r)
            (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $vg) (local.get $vg))))))
        (v128.store (local.get $p) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (f32x4.demote_f64x2_zero (local.get $lo)) (f32x4.demote_f64x2_zero (local.get $hi))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $g (i32.add (local.get $g) (i32.const 16)))
        (br $l4)))
    (block $done1
      (loop $l1
        (br_if $done1 (i32.ge_u (local.get $p) (local.get $end)))
        (f32.store (local.get $p) (f32.demote_f64 (f64.sub (f64.promote_f32 (f32.load (local.get $p)))
          (f64.mul (local.get $lr) (f64.promote_f32 (f32.load (local.get $g)))))))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (local.set $g (i32.add (local.get $g) (i32.const 4)))
        (br $l1))))

  ;; mean_sq then sgd_step in one pass, the same values: for each i, the mean m = f32(g[i] / $b) is
  ;; stored in g[i], its square (in f64) goes into partial sum i mod 4, and
  ;; p[i] = f32(f64(p[i]) - $lr * f64(m)), sgd_step's arithmetic. Returns mean_sq's (s0 + s1) + (s2 + s3).
  ;; The mean: when $div is 0, $inv = 1/$b is a power of two (2^-30 .. 1) and the f32 multiply
  ;; x * f32($inv) rounds the exact product once, as mean_sq's f32(f64(x) * $inv) does (that f64
  ;; product is exact), so the same float; else f32(f64(x) / $b) as mean_sq. Two lanes at a time
  ;; (64-bit loads and stores instead of shuffles: the f32<->f64 conversions are the bottleneck).
  ;; $p and $g must not overlap (wasm.ts takes the two passes then).
  (func (export "sgd_mean_step") (param $p i32) (param $g i32) (param $n i32) (param $b f64) (param $inv f64) (param $div i32) (param $lr f64) (result f64)
    (local $end i32) (local $m v128) (local $a01 v128) (local $a23 v128) (local $r v128) (local $b2 v128) (local $inv4 v128)
    (local $s0 f64) (local $s1 f64) (local $s2 f64) (local $s3 f64) (local $k i32) (local $x f64)
    (local.set $end (i32.add (local.get $g) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $r (f64x2.splat (local.get $lr)))
    (local.set $b2 (f64x2.splat (local.get $b)))
    (local.set $inv4 (f32x4.splat (f32.demote_f64 (local.get $inv))))
    ;; four values per iteration: lanes 0, 1 into $a01 and 2, 3 into $a23 (partial sums 0..3)
    (block $main
      (if (local.get $div)
        (then
          (loop $ld
            (br_if $main (i32.gt_u (i32.add (local.get $g) (i32.const 16)) (local.get $end)))
            (local.set $m (f32x4.demote_f64x2_zero (f64x2.div (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 (local.get $g))) (local.get $b2))))
            (v128.store64_lane offset=0 0 (local.get $g) (local.get $m))
            (local.set $m (f64x2.promote_low_f32x4 (local.get $m)))
            (local.set $a01 (f64x2.add (local.get $a01) (f64x2.mul (local.get $m) (local.get $m))))
            (v128.store64_lane offset=0 0 (local.get $p) (f32x4.demote_f64x2_zero
              (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 (local.get $p))) (f64x2.mul (local.get $r) (local.get $m)))))
            (local.set $m (f32x4.demote_f64x2_zero (f64x2.div (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $g))) (local.get $b2))))
            (v128.store64_lane offset=8 0 (local.get $g) (local.get $m))
            (local.set $m (f64x2.promote_low_f32x4 (local.get $m)))
            (local.set $a23 (f64x2.add (local.get $a23) (f64x2.mul (local.get $m) (local.get $m))))
            (v128.store64_lane offset=8 0 (local.get $p) (f32x4.demote_f64x2_zero
              (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $p))) (f64x2.mul (local.get $r) (local.get $m)))))
            (local.set $g (i32.add (local.get $g) (i32.const 16)))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (br $ld)))
        (else
          (loop $lm
            (br_if $main (i32.gt_u (i32.add (local.get $g) (i32.const 16)) (local.get $end)))
            (local.set $m (f32x4.mul (v128.load64_zero offset=0 (local.get $g)) (local.get $inv4)))
            (v128.store64_lane offset=0 0 (local.get $g) (local.get $m))
            (local.set $m (f64x2.promote_low_f32x4 (local.get $m)))
            (local.set $a01 (f64x2.add (local.get $a01) (f64x2.mul (local.get $m) (local.get $m))))
            (v128.store64_lane offset=0 0 (local.get $p) (f32x4.demote_f64x2_zero
              (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 (local.get $p))) (f64x2.mul (local.get $r) (local.get $m)))))
            (local.set $m (f32x4.mul (v128.load64_zero offset=8 (local.get $g)) (local.get $inv4)))
            (v128.store64_lane offset=8 0 (local.get $g) (local.get $m))
            (local.set $m (f64x2.promote_low_f32x4 (local.get $m)))
            (local.set $a23 (f64x2.add (local.get $a23) (f64x2.mul (local.get $m) (local.get $m))))
            (v128.store64_lane offset=8 0 (local.get $p) (f32x4.demote_f64x2_zero
              (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $p))) (f64x2.mul (local.get $r) (local.get $m)))))
            (local.set $g (i32.add (local.get $g) (i32.const 16)))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (br $lm)))))
    (local.set $s0 (f64x2.extract_lane 0 (local.get $a01)))
    (local.set $s1 (f64x2.extract_lane 1 (local.get $a01)))
    (local.set $s2 (f64x2.extract_lane 0 (local.get $a23)))
    (local.set $s3 (f64x2.extract_lane 1 (local.get $a23)))
    ;; the last n % 4 values, mean_sq's scalar arithmetic: lanes 0, 1, 2 in order
    (block $tdone
      (loop $tl
        (br_if $tdone (i32.ge_u (local.get $g) (local.get $end)))
        (local.set $x (f64.promote_f32 (f32.load (local.get $g))))
        (local.set $x (select (f64.div (local.get $x) (local.get $b)) (f64.mul (local.get $x) (local.get $inv)) (local.get $div)))
        (local.set $x (f64.promote_f32 (f32.demote_f64 (local.get $x))))
        (f32.store (local.get $g) (f32.demote_f64 (local.get $x)))
        (f32.store (local.get $p) (f32.demote_f64 (f64.sub (f64.promote_f32 (f32.load (local.get $p)))
          (f64.mul (local.get $lr) (local.get $x)))))
        (local.set $x (f64.mul (local.get $x) (local.get $x)))
        (if (i32.eqz (local.get $k)) (then (local.set $s0 (f64.add (local.get $s0) (local.get $x)))))
        (if (i32.eq (local.get $k) (i32.const 1)) (then (local.set $s1 (f64.add (local.get $s1) (local.get $x)))))
        (if (i32.eq (local.get $k) (i32.const 2)) (then (local.set $s2 (f64.add (local.get $s2) (local.get $x)))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (local.set $g (i32.add (local.get $g) (i32.const 4)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $tl)))
    (f64.add (f64.add (local.get $s0) (local.get $s1)) (f64.add (local.get $s2) (local.get $s3))))

  ;; Adam / AdamW for plain terms: adamLoop's loop (check.ts adamStepJs) exactly, per element in f64:
  ;;   x = g[i]; mi = b1*m[i] + c1*x; vi = b2*v[i] + (c2*x)*x   (c1 = 1 - b1, c2 = 1 - b2)
  ;;   m[i] = f32(mi); v[i] = f32(vi); w = p[i]
  ;;   p[i] = f32((w - decay*w) - (lr*(mi/bc1)) / (sqrt(vi/bc2) + eps))
  ;; Every step is one IEEE f64 add, sub, mul, div or sqrt (rounded to nearest, as JS's), in the
  ;; JS source's order, with the f64 mi and vi (not the stored f32) in p's formula: the same bits.
  ;; Two lanes per f64x2 (64-bit loads and stores), four elements per iteration, then two, then the
  ;; odd last element (the same arithmetic in every part).
  ;; The four arrays must not overlap (wasm.ts runs the JS loop then).
  (func (export "adam_step") (param $p i32) (param $g i32) (param $m i32) (param $v i32) (param $n i32)
      (param $lr f64) (param $b1 f64) (param $b2 f64) (param $eps f64) (param $bc1 f64) (param $bc2 f64) (param $decay f64)
    (local $end i32) (local $c1 f64) (local $c2 f64) (local $x f64) (local $mi f64) (local $vi f64) (local $w f64)
    (local $X v128) (local $MI v128) (local $VI v128) (local $W v128)
    (local $LR v128) (local $B1 v128) (local $B2 v128) (local $C1 v128) (local $C2 v128)
    (local $E v128) (local $BC1 v128) (local $BC2 v128) (local $D v128)
    (local.set $c1 (f64.sub (f64.const 1) (local.get $b1)))
    (local.set $c2 (f64.sub (f64.const 1) (local.get $b2)))
    (local.set $LR (f64x2.splat (local.get $lr)))
    (local.set $B1 (f64x2.splat (local.get $b1)))
    (local.set $B2 (f64x2.splat (local.get $b2)))
    (local.set $C1 (f64x2.splat (local.get $c1)))
    (local.set $C2 (f64x2.splat (local.get $c2)))
    (local.set $E (f64x2.splat (local.get $eps)))
    (local.set $BC1 (f64x2.splat (local.get $bc1)))
    (local.set $BC2 (f64x2.splat (local.get $bc2)))
    (local.set $D (f64x2.splat (local.get $decay)))
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $done4
      (loop $l4
        (br_if $done4 (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $end)))
        (local.set $X (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 (local.get $g))))
        (local.set $MI (f64x2.add
          (f64x2.mul (local.get $B1) (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 (local.get $m))))
          (f64x2.mul (local.get $C1) (local.get $X))))
        (local.set $VI (f64x2.add
          (f64x2.mul (local.get $B2) (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 (local.get $v))))
          (f64x2.mul (f64x2.mul (local.get $C2) (local.get $X)) (local.get $X))))
        (v128.store64_lane offset=0 0 (local.get $m) (f32x4.demote_f64x2_zero (local.get $MI)))
        (v128.store64_lane offset=0 0 (local.get $v) (f32x4.demote_f64x2_zero (local.get $VI)))
        (local.set $W (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 (local.get $p))))
        (v128.store64_lane offset=0 0 (local.get $p) (f32x4.demote_f64x2_zero
          (f64x2.sub
            (f64x2.sub (local.get $W) (f64x2.mul (local.get $D) (local.get $W)))
            (f64x2.div
              (f64x2.mul (local.get $LR) (f64x2.div (local.get $MI) (local.get $BC1)))
              (f64x2.add (f64x2.sqrt (f64x2.div (local.get $VI) (local.get $BC2))) (local.get $E))))))
        (local.set $X (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $g))))
        (local.set $MI (f64x2.add
          (f64x2.mul (local.get $B1) (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $m))))
          (f64x2.mul (local.get $C1) (local.get $X))))
        (local.set $VI (f64x2.add
          (f64x2.mul (local.get $B2) (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $v))))
          (f64x2.mul (f64x2.mul (local.get $C2) (local.get $X)) (local.get $X))))
        (v128.store64_lane offset=8 0 (local.get $m) (f32x4.demote_f64x2_zero (local.get $MI)))
        (v128.store64_lane offset=8 0 (local.get $v) (f32x4.demote_f64x2_zero (local.get $VI)))
        (local.set $W (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $p))))
        (v128.store64_lane offset=8 0 (local.get $p) (f32x4.demote_f64x2_zero
          (f64x2.sub
            (f64x2.sub (local.get $W) (f64x2.mul (local.get $D) (local.get $W)))
            (f64x2.div
              (f64x2.mul (local.get $LR) (f64x2.div (local.get $MI) (local.get $BC1)))
              (f64x2.add (f64x2.sqrt (f64x2.div (local.get $VI) (local.get $BC2))) (local.get $E))))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $g (i32.add (local.get $g) (i32.const 16)))
        (local.set $m (i32.add (local.get $m) (i32.const 16)))
        (local.set $v (i32.add (local.get $v) (i32.const 16)))
        (br $l4)))
    (block $done2
      (loop $l2
        (br_if $done2 (i32.gt_u (i32.add (local.get $p) (i32.const 8)) (local.get $end)))
        (local.set $X (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $g))))
        (local.set $MI (f64x2.add
          (f64x2.mul (local.get $B1) (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $m))))
          (f64x2.mul (local.get $C1) (local.get $X))))
        (local.set $VI (f64x2.add
          (f64x2.mul (local.get $B2) (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $v))))
          (f64x2.mul (f64x2.mul (local.get $C2) (local.get $X)) (local.get $X))))
        (v128.store64_lane 0 (local.get $m) (f32x4.demote_f64x2_zero (local.get $MI)))
        (v128.store64_lane 0 (local.get $v) (f32x4.demote_f64x2_zero (local.get $VI)))
        (local.set $W (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $p))))
        (v128.store64_lane 0 (local.get $p) (f32x4.demote_f64x2_zero
          (f64x2.sub
            (f64x2.sub (local.get $W) (f64x2.mul (local.get $D) (local.get $W)))
            (f64x2.div
              (f64x2.mul (local.get $LR) (f64x2.div (local.get $MI) (local.get $BC1)))
              (f64x2.add (f64x2.sqrt (f64x2.div (local.get $VI) (local.get $BC2))) (local.get $E))))))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (local.set $g (i32.add (local.get $g) (i32.const 8)))
        (local.set $m (i32.add (local.get $m) (i32.const 8)))
        (local.set $v (i32.add (local.get $v) (i32.const 8)))
        (br $l2)))
    (if (i32.lt_u (local.get $p) (local.get $end))
      (then
        (local.set $x (f64.promote_f32 (f32.load (local.get $g))))
        (local.set $mi (f64.add
          (f64.mul (local.get $b1) (f64.promote_f32 (f32.load (local.get $m))))
          (f64.mul (local.get $c1) (local.get $x))))
        (local.set $vi (f64.add
          (f64.mul (local.get $b2) (f64.promote_f32 (f32.load (local.get $v))))
          (f64.mul (f64.mul (local.get $c2) (local.get $x)) (local.get $x))))
        (f32.store (local.get $m) (f32.demote_f64 (local.get $mi)))
        (f32.store (local.get $v) (f32.demote_f64 (local.get $vi)))
        (local.set $w (f64.promote_f32 (f32.load (local.get $p))))
        (f32.store (local.get $p) (f32.demote_f64
          (f64.sub
            (f64.sub (local.get $w) (f64.mul (local.get $decay) (local.get $w)))
            (f64.div
              (f64.mul (local.get $lr) (f64.div (local.get $mi) (local.get $bc1)))
              (f64.add (f64.sqrt (f64.div (local.get $vi) (local.get $bc2))) (local.get $eps)))))))))

  ;; Momentum / Nesterov for plain terms: momentumLoop's loop (check.ts momentumStepJs) exactly, in f64:
  ;;   x = g[i]; b = mu*vel[i] + x; vel[i] = f32(b)
  ;;   p[i] = f32(p[i] - lr*u)   with u = nesterov ? x + mu*b : b   (the f64 b, not the stored f32)
  ;; Each step one IEEE f64 op in the JS source's order: the same bits. Two lanes per f64x2, then
  ;; the odd last element. The three arrays must not overlap (wasm.ts runs the JS loop then).
  (func (export "momentum_step") (param $p i32) (param $g i32) (param $vel i32) (param $n i32)
      (param $lr f64) (param $mu f64) (param $nes i32)
    (local $end i32) (local $x f64) (local $b f64)
    (local $X v128) (local $B v128) (local $LR v128) (local $MU v128)
    (local.set $LR (f64x2.splat (local.get $lr)))
    (local.set $MU (f64x2.splat (local.get $mu)))
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $done2
      (loop $l2
        (br_if $done2 (i32.gt_u (i32.add (local.get $p) (i32.const 8)) (local.get $end)))
        (local.set $X (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $g))))
        (local.set $B (f64x2.add
          (f64x2.mul (local.get $MU) (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $vel))))
          (local.get $X)))
        (v128.store64_lane 0 (local.get $vel) (f32x4.demote_f64x2_zero (local.get $B)))
        (v128.store64_lane 0 (local.get $p) (f32x4.demote_f64x2_zero
          (f64x2.sub
            (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $p)))
            (f64x2.mul (local.get $LR)
              (select (result v128)
                (f64x2.add (local.get $X) (f64x2.mul (local.get $MU) (local.get $B)))
                (local.get $B)
                (local.get $nes))))))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (local.set $g (i32.add (local.get $g) (i32.const 8)))
        (local.set $vel (i32.add (local.get $vel) (i32.const 8)))
        (br $l2)))
    (if (i32.lt_u (local.get $p) (local.get $end))
      (then
        (local.set $x (f64.promote_f32 (f32.load (local.get $g))))
        (local.set $b (f64.add
          (f64.mul (local.get $mu) (f64.promote_f32 (f32.load (local.get $vel))))
          (local.get $x)))
        (f32.store (local.get $vel) (f32.demote_f64 (local.get $b)))
        (f32.store (local.get $p) (f32.demote_f64
          (f64.sub
            (f64.promote_f32 (f32.load (local.get $p)))
            (f64.mul (local.get $lr)
              (select (result f64)
                (f64.add (local.get $x) (f64.mul (local.get $mu) (local.get $b)))
                (local.get $b)
                (local.get $nes)))))))))

  ;; RMSProp for plain terms: rmspropLoop's loop (check.ts rmspropStepJs) exactly, in f64:
  ;;   x = g[i]; v = rho*sq[i] + (c*x)*x   (c = 1 - rho); sq[i] = f32(v)
  ;;   p[i] = f32(p[i] - (lr*x) / (sqrt(v) + eps))   (the f64 v)
  ;; Same layout and rules as momentum_step.
  (func (export "rmsprop_step") (param $p i32) (param $g i32) (param $sq i32) (param $n i32)
      (param $lr f64) (param $rho f64) (param $eps f64)
    (local $end i32) (local $c f64) (local $x f64) (local $v f64)
    (local $X v128) (local $V v128) (local $LR v128) (local $RHO v128) (local $C v128) (local $E v128)
    (local.set $c (f64.sub (f64.const 1) (local.get $rho)))
    (local.set $LR (f64x2.splat (local.get $lr)))
    (local.set $RHO (f64x2.splat (local.get $rho)))
    (local.set $C (f64x2.splat (local.get $c)))
    (local.set $E (f64x2.splat (local.get $eps)))
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $done2
      (loop $l2
        (br_if $done2 (i32.gt_u (i32.add (local.get $p) (i32.const 8)) (local.get $end)))
        (local.set $X (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $g))))
        (local.set $V (f64x2.add
          (f64x2.mul (local.get $RHO) (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $sq))))
          (f64x2.mul (f64x2.mul (local.get $C) (local.get $X)) (local.get $X))))
        (v128.store64_lane 0 (local.get $sq) (f32x4.demote_f64x2_zero (local.get $V)))
        (v128.store64_lane 0 (local.get $p) (f32x4.demote_f64x2_zero
          (f64x2.sub
            (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $p)))
            (f64x2.div
              (f64x2.mul (local.get $LR) (local.get $X))
              (f64x2.add (f64x2.sqrt (local.get $V)) (local.get $E))))))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (local.set $g (i32.add (local.get $g) (i32.const 8)))
        (local.set $sq (i32.add (local.get $sq) (i32.const 8)))
        (br $l2)))
    (if (i32.lt_u (local.get $p) (local.get $end))
      (then
        (local.set $x (f64.promote_f32 (f32.load (local.get $g))))
        (local.set $v (f64.add
          (f64.mul (local.get $rho) (f64.promote_f32 (f32.load (local.get $sq))))
          (f64.mul (f64.mul (local.get $c) (local.get $x)) (local.get $x))))
        (f32.store (local.get $sq) (f32.demote_f64 (local.get $v)))
        (f32.store (local.get $p) (f32.demote_f64
          (f64.sub
            (f64.promote_f32 (f32.load (local.get $p)))
            (f64.div
              (f64.mul (local.get $lr) (local.get $x))
              (f64.add (f64.sqrt (local.get $v)) (local.get $eps)))))))))

  ;; AdaGrad for plain terms: adagradLoop's loop (check.ts adagradStepJs) exactly, in f64:
  ;;   x = g[i]; s = sum[i] + x*x; sum[i] = f32(s)
  ;;   p[i] = f32(p[i] - (lr*x) / (sqrt(s) + eps))   (the f64 s)
  ;; Same layout and rules as momentum_step.
  (func (export "adagrad_step") (param $p i32) (param $g i32) (param $sum i32) (param $n i32)
      (param $lr f64) (param $eps f64)
    (local $end i32) (local $x f64) (local $s f64)
    (local $X v128) (local $S v128) (local $LR v128) (local $E v128)
    (local.set $LR (f64x2.splat (local.get $lr)))
    (local.set $E (f64x2.splat (local.get $eps)))
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $done2
      (loop $l2
        (br_if $done2 (i32.gt_u (i32.add (local.get $p) (i32.const 8)) (local.get $end)))
        (local.set $X (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $g))))
        (local.set $S (f64x2.add
          (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $sum)))
          (f64x2.mul (local.get $X) (local.get $X))))
        (v128.store64_lane 0 (local.get $sum) (f32x4.demote_f64x2_zero (local.get $S)))
        (v128.store64_lane 0 (local.get $p) (f32x4.demote_f64x2_zero
          (f64x2.sub
            (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $p)))
            (f64x2.div
              (f64x2.mul (local.get $LR) (local.get $X))
              (f64x2.add (f64x2.sqrt (local.get $S)) (local.get $E))))))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (local.set $g (i32.add (local.get $g) (i32.const 8)))
        (local.set $sum (i32.add (local.get $sum) (i32.const 8)))
        (br $l2)))
    (if (i32.lt_u (local.get $p) (local.get $end))
      (then
        (local.set $x (f64.promote_f32 (f32.load (local.get $g))))
        (local.set $s (f64.add
          (f64.promote_f32 (f32.load (local.get $sum)))
          (f64.mul (local.get $x) (local.get $x))))
        (f32.store (local.get $sum) (f32.demote_f64 (local.get $s)))
        (f32.store (local.get $p) (f32.demote_f64
          (f64.sub
            (f64.promote_f32 (f32.load (local.get $p)))
            (f64.div
              (f64.mul (local.get $lr) (local.get $x))
              (f64.add (f64.sqrt (local.get $s)) (local.get $eps)))))))))

  ;; Forward: C[m x n] = A[m x k] . B[n x k]^T (+ bias[n] if $bias != 0).
  ;; Scratch: $pa holds ceil(m/4)*4*k f32, $pb holds ceil(n/8)*8*k f32.
  ;; $relu != 0: store max(0, x) (after the bias) instead of x.
  (func (export "gemm_abt") (param $m i32) (param $n i32) (param $k i32) (param $a i32) (param $b i32)
                            (param $c i32) (param $bias i32) (param $pa i32) (param $pb i32) (param $relu i32)
    (local $i i32) (local $j i32) (local $ap i32) (local $bp i32)
    (call $pack_rows (local.get $a) (local.get $m) (local.get $k) (i32.const 4) (local.get $pa))
    (call $pack_rows (local.get $b) (local.get $n) (local.get $k) (i32.const 8) (local.get $pb))
    (local.set $bp (local.get $pb))
    (block $jdone
      (loop $jl
        (br_if $jdone (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $i (i32.const 0))
        (local.set $ap (local.get $pa))
        (block $idone
          (loop $il
            (br_if $idone (i32.ge_u (local.get $i) (local.get $m)))
            (call $tile
              (local.get $ap) (i32.const 16) (local.get $bp) (i32.const 32) (local.get $k)
              (i32.add (local.get $c)
                (i32.shl (i32.add (i32.mul (local.get $i) (local.get $n)) (local.get $j)) (i32.const 2)))
              (i32.shl (local.get $n) (i32.const 2))
              (call $clip (i32.sub (local.get $m) (local.get $i)) (i32.const 4))
              (call $clip (i32.sub (local.get $n) (local.get $j)) (i32.const 8))
              (select
                (i32.add (local.get $bias) (i32.shl (local.get $j) (i32.const 2)))
                (i32.const 0)
                (local.get $bias))
              (local.get $relu))
            (local.set $ap (i32.add (local.get $ap) (i32.shl (local.get $k) (i32.const 4))))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $il)))
        (local.set $bp (i32.add (local.get $bp) (i32.shl (local.get $k) (i32.const 5))))
        (local.set $j (i32.add (local.get $j) (i32.const 8)))
        (br $jl))))

  ;; Weight gradient: C[n x k] = A[m x n]^T . B[m x k], the sum over the m rows.
  ;; Scratch: $pa holds ceil(n/4)*4*m f32 (A in panels of 4 columns), $pb holds 8*m f32
  ;; (one panel of 8 columns of B at a time).
  (func (export "gemm_atb") (param $m i32) (param $n i32) (param $k i32) (param $a i32) (param $b i32)
                            (param $c i32) (param $pa i32) (param $pb i32)
    (local $j i32) (local $p i32) (local $ap i32)
    (call $pack_cols (local.get $a) (i32.shl (local.get $n) (i32.const 2)) (local.get $n) (local.get $m)
      (i32.const 4) (local.get $pa))
    (block $pdone
      (loop $pl
        (br_if $pdone (i32.ge_u (local.get $p) (local.get $k)))
        (call $pack_cols
          (i32.add (local.get $b) (i32.shl (local.get $p) (i32.const 2)))
          (i32.shl (local.get $k) (i32.const 2))
          (call $clip (i32.sub (local.get $k) (local.get $p)) (i32.const 8))
          (local.get $m) (i32.const 8) (local.get $pb))
        (local.set $j (i32.const 0))
        (local.set $ap (local.get $pa))
        (block $jdone
          (loop $jl
            (br_if $jdone (i32.ge_u (local.get $j) (local.get $n)))
            (call $tile
              (local.get $ap) (i32.const 16) (local.get $pb) (i32.const 32) (local.get $m)
              (i32.add (local.get $c)
                (i32.shl (i32.add (i32.mul (local.get $j) (local.get $k)) (local.get $p)) (i32.const 2)))
              (i32.shl (local.get $k) (i32.const 2))
              (call $clip (i32.sub (local.get $n) (local.get $j)) (i32.const 4))
              (call $clip (i32.sub (local.get $k) (local.get $p)) (i32.const 8))
              (i32.const 0) (i32.const 0))
            (local.set $ap (i32.add (local.get $ap) (i32.shl (local.get $m) (i32.const 4))))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $jl)))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (br $pl))))

  ;; Input gradient: C[m x k] = A[m x n] . B[n x k]. Scratch: $pa holds ceil(m/4)*4*n f32
  ;; (A in panels of 4 rows), $pb holds 8*n f32 (one panel of 8 columns of B at a time).
  (func (export "gemm_ab") (param $m i32) (param $n i32) (param $k i32) (param $a i32) (param $b i32)
                           (param $c i32) (param $pa i32) (param $pb i32)
    (local $i i32) (local $p i32) (local $ap i32)
    (call $pack_rows (local.get $a) (local.get $m) (local.get $n) (i32.const 4) (local.get $pa))
    (block $pdone
      (loop $pl
        (br_if $pdone (i32.ge_u (local.get $p) (local.get $k)))
        (call $pack_cols
          (i32.add (local.get $b) (i32.shl (local.get $p) (i32.const 2)))
          (i32.shl (local.get $k) (i32.const 2))
          (call $clip (i32.sub (local.get $k) (local.get $p)) (i32.const 8))
          (local.get $n) (i32.const 8) (local.get $pb))
        (local.set $i (i32.const 0))
        (local.set $ap (local.get $pa))
        (block $idone
          (loop $il
            (br_if $idone (i32.ge_u (local.get $i) (local.get $m)))
            (call $tile
              (local.get $ap) (i32.const 16) (local.get $pb) (i32.const 32) (local.get $n)
              (i32.add (local.get $c)
                (i32.shl (i32.add (i32.mul (local.get $i) (local.get $k)) (local.get $p)) (i32.const 2)))
              (i32.shl (local.get $k) (i32.const 2))
              (call $clip (i32.sub (local.get $m) (local.get $i)) (i32.const 4))
              (call $clip (i32.sub (local.get $k) (local.get $p)) (i32.const 8))
              (i32.const 0) (i32.const 0))
            (local.set $ap (i32.add (local.get $ap) (i32.shl (local.get $n) (i32.const 4))))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $il)))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (br $pl)))))
