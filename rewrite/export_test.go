package rewrite

// Test helpers of the internal test package that the external one uses.
var (
	CheckVerified = checkVerified
	CheckRejected = checkRejected
)
