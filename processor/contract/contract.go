// Package contract is the wire contract between the control plane and its
// processors (DESIGN §2, §5): the bridge's requests and answers, the
// interview plan, the claim of a warm processor, the token a candidate
// presents, and the environment a processor is started with. Both roles
// import these types, so a field added for one side exists on the other by
// construction. It is a leaf: it imports nothing of Candor's.
package contract
