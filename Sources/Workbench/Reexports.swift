import Tensors

/// The engine's cancellation, as the layers above Workbench see it.
public typealias CancellationToken = Tensors.CancellationToken
public typealias CancellationError = Tensors.CancellationError
