import CBLAS

/// Gram matrix of feature maps divided by C·H·W, as the seed's `gram_matrix`
/// (Gatys et al. 2016; Johnson et al. 2016, eq. 3).
///
///   F = x[n] viewed as [C, H·W];  G[n] = F·Fᵀ / (C·H·W)   → y [N, C, C]
///   dF = (dG + dGᵀ)·F / (C·H·W)
public func gramForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ xd: Dims4) {
    let c = xd.c, hw = xd.plane
    let scale = 1 / Float(c * hw)
    for n in 0..<xd.n {
        // G is symmetric: ssyrk computes the upper triangle (half the work of sgemm), then mirror it.
        let g = y + n * c * c
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, Int32(c), Int32(hw),
                    scale, x + n * c * hw, Int32(hw), 0, g, Int32(c))
        for i in 0..<c { for j in 0..<i { g[i * c + j] = g[j * c + i] } }
    }
}

/// dx is ACCUMULATED (+=): a VGG tap receives this gradient on top of the one from deeper layers.
/// `ws` holds the symmetrised dG.
public func gramBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
                         _ xd: Dims4, _ ws: Scratch) {
    let c = xd.c, hw = xd.plane
    let scale = 1 / Float(c * hw)
    let sym = ws.pointer(c * c)
    for n in 0..<xd.n {
        let g = dy + n * c * c
        for i in 0..<c { for j in 0..<c { sym[i * c + j] = g[i * c + j] + g[j * c + i] } }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(c), Int32(hw), Int32(c),
                    scale, sym, Int32(c), x + n * c * hw, Int32(hw), 1, dx + n * c * hw, Int32(hw))
    }
}
