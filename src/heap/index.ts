/** The heap segment reader: header, chunk walk, sources (docs/heap-layout.md). */
export * from './definitions.js'
export {readHeapHeader, type HeapHeader} from './reader.js'
export {bufferSource, fdHeapSource, fileSource, readerSource, type HeapSource, type ReadAt} from './source.js'
export {ChunkCursor, summarize, walkChunks, type Chunk, type ChunkState, type HeapSummary} from './walk.js'
